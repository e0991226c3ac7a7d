# GMP 6.2.1 (LFS 11.3 §8.19) from Debian's repack (6.2.1+dfsg1: doc/ removed, the GFDL manual).
# Store adaptations:
# - --prefix=$out. configure still lists doc/Makefile: an empty one, as for gcc's in-tree gmp
#   (gcc_unpack_libraries), and no `make html` / `make install-html` (no manual to make).
# - Generic libraries, as the book's note offers (configfsf.guess): a store path must not depend on
#   the CPU of the machine that happened to build it.
# - The book: the tests are critical; all 197 must pass (run_tests fails on any).
cp -v configfsf.guess config.guess
cp -v configfsf.sub   config.sub
if [ ! -e doc/Makefile.in ]; then
    mkdir -p doc
    printf 'all install install-strip uninstall check installcheck clean distclean mostlyclean maintainer-clean:\n\t@:\n' \
        > doc/Makefile.in
fi
./configure --prefix="$out"    \
            --enable-cxx     \
            --disable-static \
            --docdir="$out"/share/doc/gmp-6.2.1
make
run_tests make check
if [ -n "$doCheck" ]; then
    awk '/# PASS:/{total+=$3} ; END{print "gmp: " total " tests passed"}' "$NIX_BUILD_TOP/tests.log"
fi
make install
