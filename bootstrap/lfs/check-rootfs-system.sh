# Inside the finished system (`storekit bootstrap enter`, run by `storekit bootstrap verify`): the
# checks the book makes of chapter 8 (§8.5 and §8.28's toolchain checks, and the programs it names),
# with the system as / and nothing of the host or of the temporary system on PATH. The loader a
# program asks for is chapter 8's glibc's, a store path (there is no /lib64 here).
set -e
ok() { echo "ok: $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
# must DESCRIPTION COMMAND…: ok when the command succeeds, else the check fails (a `cmd && ok …`
# list would let set -e pass over a failure)
must() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
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
must "a.out runs" ./a.out
crt=$(grep -o '/[^ ]*crt1.o succeeded' dummy.log | head -n1)
case $crt in *-glibc-*/lib/*crt1.o*) ok "gcc found its start files ($crt)" ;; *) echo "FAILED: start files: $crt" >&2; exit 1 ;; esac
must "ld lists its search directories" grep -q 'SEARCH_DIR' dummy.log
printf '#include <iostream>\nint main(){ std::cout << "c++ ok" << std::endl; }\n' > t.cc
g++ t.cc -o t
must "g++ compiles and the C++ program runs" [ "$(./t)" = "c++ ok" ]
gcc -static-pie dummy.c -o sp
must "a static PIE runs (no RUNPATH: glibc's self-relocation)" ./sp
printf '#include <omp.h>\nint main(void){ return omp_get_max_threads() < 1; }\n' > omp.c
gcc -fopenmp omp.c -o omp
must "an OpenMP program finds libgomp" ./omp
# programs that link their own package's libraries find them (the store's rpaths; the system's
# loader searches its own lib dir, not /usr/lib)
for cmd in "openssl version" "mkfs.ext4 -V" "python3 -c 'import ssl, ctypes, curses, readline'" "udevadm --version" \
    "xz --version" "perl -MPOSIX -e 1" "gawk -M 'BEGIN{print 2^100}'"; do
    sh -c "$cmd" > /dev/null 2>&1 || { sh -c "$cmd"; fail "$cmd"; }
done
ok "openssl, mkfs.ext4, python3's modules, udevadm, xz, perl and gawk -M run"
must "bc computes" [ "$(echo 'scale=3; 1/8' | bc)" = ".125" ]
must "nothing of the host is visible" sh -c '[ ! -e /work ] && [ ! -e /etc/debian_version ]'
