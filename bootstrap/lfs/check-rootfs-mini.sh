# Inside the CI profile's system (`storekit bootstrap enter`, run by `storekit bootstrap verify`): the
# book's chapter 8 checks, scaled to what this profile has. Runs with the system's /bin/sh as /.
set -e
ok() { echo "ok: $*"; }
[ "$(hello)" = "Hello, world!" ] && ok "hello (stage 2) says Hello, world!"
echo needle | grep -q needle && ok "$(grep --version | sed -n 1p) finds a needle"
ok "$(m4 --version | sed -n 1p), $(sed --version | sed -n 1p)"
[ "$(id -u)" = 0 ] && ok "uid 0 inside, no root outside"
grep -q '^root:x:0:0:' /etc/passwd && ok "/etc/passwd is the profile's"
cd /tmp
printf '#include <stdio.h>\nint main(void){puts("compiled inside");return 0;}\n' > t.c
gcc t.c -o t
[ "$(./t)" = "compiled inside" ] && ok "gcc compiles and the program runs"
interp=$(readelf -l t | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
case $interp in
    /lib*|/usr/lib*|"") echo "FAILED: the program asks for $interp, not a loader in the store" >&2; exit 1 ;;
    *) ok "readelf -l names the store's loader: $interp" ;;
esac
[ ! -e /work ] && [ ! -e /etc/debian_version ] && ok "the host's files are not visible"
