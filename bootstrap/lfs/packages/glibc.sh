# Glibc (LFS 11.3 §8.5, the version Debian 12 carries), the system's C library.
# Store adaptations:
# - --prefix=$out: the loader is $out/lib/ld-linux-x86-64.so.2 and what links against this glibc
#   names it; ld.so.conf, ld.so.cache and nsswitch.conf are under $out/etc.
# - Built with gcc pass 2 itself ($pkg_gcc_pass2/bin/gcc), not with native-toolchain's wrapper:
#   the wrapper links against chapter 5's glibc (its loader, its rpath), which must not reach the
#   system's glibc. Glibc needs no C library to build (chapter 5 built it with a compiler that had
#   none), so the bare compiler is enough.
# - The kernel headers are chapter 8's linux-api-headers (the same headers as chapter 5's, built
#   again: a stage sees only the one before it).
# - The book's `make check` is glibc-check's: this script with GLIBC_TESTS_ONLY=1 and `check = true`,
#   a package of its own off the build's critical path, whose output is the suite's summary.
# - Locales: the book's list compiled with this glibc's localedef (the book's alternative, all of
#   localedata/SUPPORTED, is not installed). No tzdata in Debian 12's sources for the book's time
#   zone step: /etc/localtime is left to the system (UTC without one).
# - libgcc_s.so.1 beside libc.so.6, as nixpkgs' glibc has it: pthread_exit and pthread_cancel unwind
#   through a libgcc_s that libc dlopens, searching only the default directories (this glibc's lib)
#   and its ld.so.cache, never a program's RUNPATH; in the book /usr/lib holds it, in the store
#   nothing would. It is gcc pass 2's (the same gcc 12.2.0 as chapter 8's), its debug info stripped
#   and its RUNPATH (chapter 5's glibc) rewritten in place to $ORIGIN, as patchelf would, so that
#   nothing of the temporary system stays in this glibc's closure.
read -ra make_flags <<< "${GLIBC_MAKE_FLAGS:-}"
gcc="$pkg_gcc_pass2/bin/gcc"
build_cc=()
if [ -n "${GLIBC_TESTS_ONLY:-}" ]; then
    # The suite builds programs that run on the build machine (stdlib/isomac) with BUILD_CC, $CC
    # unless set; the bare gcc pass 2 has no C library's start files to link them with (Scrt1.o,
    # crti.o), the temporary system's cc does.
    build_cc=(BUILD_CC=cc)
fi
mkdir -v build
cd build
echo "rootsbindir=$out/sbin" > configparms
../configure --prefix="$out" \
             CC="$gcc" CXX="$pkg_gcc_pass2/bin/g++" "${build_cc[@]}" \
             --disable-werror \
             --enable-kernel="${GLIBC_KERNEL:-3.2}" \
             --enable-stack-protector=strong \
             --with-headers="$pkg_linux_api_headers/include" \
             --disable-nscd \
             libc_cv_slibdir="$out/lib"
make "${make_flags[@]}"
if [ -n "${GLIBC_TESTS_ONLY:-}" ]; then
    # libgcc_s.so.1 on the tests' library path (the build dir, which the suite gives ld.so as
    # --library-path): the cancellation and backtrace tests unwind through a libgcc_s that libc
    # dlopens, which the book finds in /usr/lib and the store's glibc in its own lib dir, not
    # installed yet. Without it those tests abort (128 nptl failures), and tst-cancel7's child,
    # which only the finished test kills, is left running: make then never ends.
    cp "$pkg_gcc_pass2/lib/libgcc_s.so.1" .
    # A few test objects (elf/tst-big-note-lib.so) are linked by the bare gcc pass 2 with no -B, so
    # it looks for crti.o and crtn.o in LIBRARY_PATH: this glibc's own, in csu/ (the book's are in
    # /usr/lib). Without them the elf directory reports no results at all.
    export LIBRARY_PATH="$PWD/csu"
    # -k, as the book's summary wants every directory's results: one that fails to build its tests
    # does not stop the others; with such an error make skips the summary (the top Makefile's
    # `tests` target), so it is made here the same way, from each directory's subdir-tests.sum
    # (a directory without one is an ERROR line, as merge-test-results.sh writes it).
    run_tests make "${make_flags[@]}" -k check
    if [ ! -f tests.sum ]; then
        read -ra subdirs <<< "$(sed -n 's/^sorted-subdirs *:= *//p' sysd-sorted)"
        [ "${#subdirs[@]}" -gt 0 ] || die "no sorted-subdirs in sysd-sorted: cannot summarize the suite"
        ../scripts/merge-test-results.sh -t "$PWD/" subdir-tests.sum "${subdirs[@]}" . > tests.sum
    fi
    grep -q '^PASS:' tests.sum || die "glibc's tests.sum has no PASS line: the suite did not run (its log is above)"
    # run_tests judged make's output, where a directory that fails to build its tests prints no FAIL
    # line: the verdict is tests.sum's, each FAIL and ERROR line checked against the allowed list.
    bad=""
    while IFS= read -r line; do
        ok=""
        for name in "${allowed_failure_list[@]}"; do
            case $line in *"$name"*) ok=1 ;; esac
        done
        [ -n "$ok" ] || bad="$bad$line"$'\n'
    done < <(grep -E '^(FAIL|ERROR):' tests.sum || true)
    [ -z "$bad" ] || die "glibc's tests failed, not in allowed_test_failures:"$'\n'"$bad"
    mkdir -p "$out/share/test-results"
    cp -v tests.sum "$out/share/test-results/glibc.sum"
    find . -name "*.out" -exec grep -l "Timed out" {} + > "$out/share/test-results/timed-out" || true
    return 0
fi
mkdir -p "$out/etc"
touch "$out/etc/ld.so.conf"
# shellcheck disable=SC2016 # $(PERL) is make's, in the Makefile
sed '/test-installation/s@$(PERL)@echo not running@' -i ../Makefile
make "${make_flags[@]}" install
sed '/RTLDLIST=/s@/usr@@g' -i "$out/bin/ldd"

# The book's locales (§8.5.1), compiled by the localedef just installed into its locale archive.
localedef="$out/bin/localedef"
export I18NPATH="$out/share/i18n"
mkdir -p "$out/lib/locale"  # the archive's directory: glibc's install does not make it
while read -r locale charset name; do
    "$localedef" -i "$locale" -f "$charset" "$name" || die "localedef $locale $charset failed"
done <<'LOCALES'
C UTF-8 C.UTF-8
cs_CZ UTF-8 cs_CZ.UTF-8
de_DE ISO-8859-1 de_DE
de_DE@euro ISO-8859-15 de_DE@euro
de_DE UTF-8 de_DE.UTF-8
el_GR ISO-8859-7 el_GR
en_GB ISO-8859-1 en_GB
en_GB UTF-8 en_GB.UTF-8
en_HK ISO-8859-1 en_HK
en_PH ISO-8859-1 en_PH
en_US ISO-8859-1 en_US
en_US UTF-8 en_US.UTF-8
es_ES ISO-8859-15 es_ES@euro
es_MX ISO-8859-1 es_MX
fa_IR UTF-8 fa_IR
fr_FR ISO-8859-1 fr_FR
fr_FR@euro ISO-8859-15 fr_FR@euro
fr_FR UTF-8 fr_FR.UTF-8
is_IS ISO-8859-1 is_IS
is_IS UTF-8 is_IS.UTF-8
it_IT ISO-8859-1 it_IT
it_IT ISO-8859-15 it_IT@euro
it_IT UTF-8 it_IT.UTF-8
ja_JP EUC-JP ja_JP
ja_JP UTF-8 ja_JP.UTF-8
nl_NL@euro ISO-8859-15 nl_NL@euro
ru_RU KOI8-R ru_RU.KOI8-R
ru_RU UTF-8 ru_RU.UTF-8
se_NO UTF-8 se_NO.UTF-8
ta_IN UTF-8 ta_IN.UTF-8
tr_TR UTF-8 tr_TR.UTF-8
zh_CN GB18030 zh_CN.GB18030
zh_HK BIG5-HKSCS zh_HK.BIG5-HKSCS
zh_TW UTF-8 zh_TW.UTF-8
LOCALES
# ja_JP.SJIS: the book ignores its failure (SHIFT_JIS is not ASCII-compatible)
"$localedef" -i ja_JP -f SHIFT_JIS ja_JP.SJIS 2> /dev/null || true

cat > "$out/etc/nsswitch.conf" <<'NSS'
# Begin /etc/nsswitch.conf

passwd: files
group: files
shadow: files

hosts: files dns
networks: files

protocols: files
services: files
ethers: files
rpc: files

# End /etc/nsswitch.conf
NSS

# /etc/ld.so.conf of the book (§8.5.2.3); the loader reads $out/etc/ld.so.cache
cat > "$out/etc/ld.so.conf" <<'LDCONF'
# Begin /etc/ld.so.conf
/usr/local/lib
/opt/lib
LDCONF

libgcc_s="$out/lib/libgcc_s.so.1"
cp "$pkg_gcc_pass2/lib/libgcc_s.so.1" "$libgcc_s"
chmod u+w "$libgcc_s"
strip --strip-debug "$libgcc_s"
runpath=$(readelf -d "$libgcc_s" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]$/\1/p')
if [ -n "$runpath" ]; then
    # shellcheck disable=SC2016 # perl's code, with $ORIGIN as the literal the loader expands
    RUNPATH="$runpath" perl -0777 -pi -e '
        my $n = () = /\Q$ENV{RUNPATH}\E\0/g;
        die "the RUNPATH string is there $n times, not once\n" unless $n == 1;
        s/\Q$ENV{RUNPATH}\E\0/"\$ORIGIN" . ("\0" x (length($ENV{RUNPATH}) - 6))/e' "$libgcc_s"
fi
if grep -qF "$NIX_STORE" "$libgcc_s"; then die "$libgcc_s still names a store path"; fi

# The book's check that the new glibc works: a program linked against it asks for its loader and
# runs; a thread that exits through pthread_exit and one cancelled find libgcc_s to unwind.
cd "$NIX_BUILD_TOP"
cat > t.c <<'CODE'
#include <pthread.h>
#include <unistd.h>
static void *quits(void *a) { pthread_exit(a); }
static void *sleeps(void *a) { for (;;) sleep(1); return a; }
int main(void) {
    pthread_t q, s;
    void *r;
    if (pthread_create(&q, 0, quits, 0) || pthread_join(q, 0)) return 1;
    if (pthread_create(&s, 0, sleeps, 0) || pthread_cancel(s) || pthread_join(s, &r)) return 2;
    return r == PTHREAD_CANCELED ? 0 : 3;
}
CODE
"$gcc" -B"$out/lib/" -L"$out/lib" -idirafter "$out/include" -Wl,-dynamic-linker,"$out/lib/ld-linux-x86-64.so.2" \
    -Wl,-rpath,"$out/lib" -pthread t.c -o t
./t || die "a program linked against the new glibc does not run or cannot unwind a thread (status $?)"
rm -f t t.c
