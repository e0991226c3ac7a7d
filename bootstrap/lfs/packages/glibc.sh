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
read -ra make_flags <<< "${GLIBC_MAKE_FLAGS:-}"
gcc="$pkg_gcc_pass2/bin/gcc"
mkdir -v build
cd build
echo "rootsbindir=$out/sbin" > configparms
../configure --prefix="$out" \
             CC="$gcc" CXX="$pkg_gcc_pass2/bin/g++" \
             --disable-werror \
             --enable-kernel="${GLIBC_KERNEL:-3.2}" \
             --enable-stack-protector=strong \
             --with-headers="$pkg_linux_api_headers/include" \
             --disable-nscd \
             libc_cv_slibdir="$out/lib"
make "${make_flags[@]}"
if [ -n "${GLIBC_TESTS_ONLY:-}" ]; then
    run_tests make "${make_flags[@]}" check
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

# The book's check that the new glibc works: a program linked against it asks for its loader and runs.
cd "$NIX_BUILD_TOP"
echo 'int main(){ return 0; }' > t.c
"$gcc" -B"$out/lib/" -L"$out/lib" -idirafter "$out/include" -Wl,-dynamic-linker,"$out/lib/ld-linux-x86-64.so.2" \
    -Wl,-rpath,"$out/lib" t.c -o t
./t || die "a program linked against the new glibc does not run"
rm -f t t.c
