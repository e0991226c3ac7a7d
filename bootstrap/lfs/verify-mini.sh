# Sanity checks for the CI profile, run in the sandbox with stage 2 first on PATH (LFS 12.3 §5.5's
# "sanity check", adapted): the seed's compiler links a program that runs with the store's loader,
# and the stage-2 programs run and load only from the store.
mkdir -p "$out"
report="$out/report.txt"
check() { echo "ok: $*" | tee -a "$report"; }
fail() { echo "FAILED: $*" | tee -a "$report" >&2; exit 1; }

cd "$NIX_BUILD_TOP"
echo 'int main(void) { return 0; }' > dummy.c
cc dummy.c -o a.out || fail "cc cannot compile and link a test program"
./a.out || fail "the test program does not run"
interp=$(readelf -l a.out | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
case "$interp" in
    "$NIX_STORE"/*) check "a.out's interpreter is the store's: $interp" ;;
    *) fail "a.out's interpreter is '$interp', not in $NIX_STORE" ;;
esac

for prog in "$pkg_grep_stage2/bin/grep" "$pkg_hello_stage2/bin/hello"; do
    [ "$(command -v "${prog##*/}")" = "$prog" ] || fail "${prog##*/} on PATH is not stage 2's ($prog)"
    interp=$(readelf -l "$prog" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    case "$interp" in "$NIX_STORE"/*) ;; *) fail "$prog: interpreter '$interp'" ;; esac
    if readelf -d "$prog" | grep -E 'R(UN)?PATH' | grep -v "$NIX_STORE/" ; then
        fail "$prog: an rpath entry outside the store"
    fi
    check "$prog runs with $interp"
done
[ "$(hello)" = "Hello, world!" ] || fail "hello says '$(hello)'"
check "hello says Hello, world!"
echo needle | grep -q needle || fail "stage 2's grep does not find a needle"
check "grep $(grep --version | sed -n 1p) finds a needle"
{ m4 --version && sed --version; } > /dev/null || fail "stage 1's m4 and sed do not run"
check "stage 1's m4 and sed run"
