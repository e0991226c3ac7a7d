# Inside the finished system (`storekit bootstrap enter`, run by `storekit bootstrap verify`): the
# checks the book makes of chapter 8 (§8.5 and §8.28's toolchain checks, and the programs it names),
# with the system as / and nothing of the host or of the temporary system on PATH. The loader a
# program asks for is chapter 8's glibc's, a store path (there is no /lib64 here).
set -e
ok() { echo "ok: $*"; }
ok "$(bash --version | sed -n 1p)"
# shellcheck disable=SC2012 # ls --version, no file names
ok "$(ls --version | sed -n 1p)"
ok "perl $(perl -e 'print $^V') ($(perl -V:osname))"
ok "python $(python3 -c 'import sys, ssl; print(sys.version.split()[0], ssl.OPENSSL_VERSION)')"
for tool in make gawk sed grep tar xz gzip bzip2 zstd file find diff patch m4 bison flex msgfmt \
    makeinfo autoconf automake libtool pkgconf ninja meson gperf expect tclsh bc less vim groff \
    man ip kmod mount fdisk mkfs.ext4 ps free killall passwd su udevadm grub-install openssl; do
    command -v "$tool" > /dev/null || { echo "FAILED: no $tool in the system" >&2; exit 1; }
done
ok "the book's programs are all there"
cd /tmp
echo 'int main(){return 0;}' > dummy.c
cc dummy.c -v -Wl,--verbose > dummy.log 2>&1
interp=$(readelf -l a.out | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
case $interp in
    */lib/ld-linux-x86-64.so.2) [ -e "$interp" ] && ok "readelf -l a.out: [Requesting program interpreter: $interp]" ;;
    *) echo "FAILED: a.out asks for '$interp'" >&2; exit 1 ;;
esac
case $interp in /lib*|/usr/lib*|*-tmp-*|*-cross-*|*-pass[12]-*) echo "FAILED: the loader is $interp" >&2; exit 1 ;; esac
./a.out && ok "a.out runs"
crt=$(grep -o '/[^ ]*crt1.o succeeded' dummy.log | head -n1)
case $crt in *-glibc-*/lib/*crt1.o*) ok "gcc found its start files ($crt)" ;; *) echo "FAILED: start files: $crt" >&2; exit 1 ;; esac
grep -q 'SEARCH_DIR' dummy.log && ok "ld's search directories: $(grep -c SEARCH_DIR dummy.log) lines"
printf '#include <iostream>\nint main(){ std::cout << "c++ ok" << std::endl; }\n' > t.cc
g++ t.cc -o t && [ "$(./t)" = "c++ ok" ] && ok "g++ compiles and the C++ program runs"
[ "$(echo 'scale=3; 1/8' | bc)" = ".125" ] && ok "bc computes"
[ ! -e /work ] && [ ! -e /etc/debian_version ] && ok "nothing of the host is visible"
