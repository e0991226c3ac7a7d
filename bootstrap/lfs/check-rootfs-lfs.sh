# Inside the system (`storekit bootstrap enter`, run by `storekit bootstrap verify`): the checks the
# book makes of what it has built (chapter 8's, as far as the tools so far allow), with the system as
# / and nothing of the host: compile, link and run with the system's compiler, `readelf -l` names the
# system's loader (a store path: no /lib64 here), bash, ls, perl, python and the rest run.
set -e
ok() { echo "ok: $*"; }
ok "$(bash --version | sed -n 1p)"
# shellcheck disable=SC2012 # ls --version, no file names
ok "$(ls --version | sed -n 1p)"
ok "perl $(perl -e 'print $^V') ($(perl -V:osname))"
ok "python $(python3 -c 'import sys; print(sys.version.split()[0])')"
for tool in make gawk sed grep tar xz gzip file find diff patch m4 bison msgfmt makeinfo; do
    "$tool" --version > /dev/null || { echo "FAILED: $tool --version" >&2; exit 1; }
done
ok "make, gawk, sed, grep, tar, xz, gzip, file, find, diff, patch, m4, bison, msgfmt, makeinfo run"
mount --version > /dev/null && ok "$(mount --version)"
cd /tmp
echo 'int main(){return 0;}' > dummy.c
cc dummy.c -v -Wl,--verbose > dummy.log 2>&1
interp=$(readelf -l a.out | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
case $interp in
    */lib/ld-linux-x86-64.so.2) [ -e "$interp" ] && ok "readelf -l a.out: [Requesting program interpreter: $interp]" ;;
    *) echo "FAILED: a.out asks for '$interp'" >&2; exit 1 ;;
esac
case $interp in /lib*|/usr/lib*) echo "FAILED: the loader is the host's kind of path" >&2; exit 1 ;; esac
./a.out && ok "a.out runs"
grep -o -m1 'crt1.o succeeded' dummy.log > /dev/null && ok "gcc found its start files ($(grep -o '/[^ ]*crt1.o succeeded' dummy.log | head -n1))"
printf '#include <iostream>\nint main(){ std::cout << "c++ ok" << std::endl; }\n' > t.cc
g++ t.cc -o t && [ "$(./t)" = "c++ ok" ] && ok "g++ compiles and the C++ program runs"
[ ! -e /work ] && [ ! -e /etc/debian_version ] && ok "nothing of the host is visible"
