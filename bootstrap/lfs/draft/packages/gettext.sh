# gettext (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
./configure --prefix="$out"    \
            --disable-static \
            --docdir="$out"/share/doc/gettext-0.24

make

run_tests make check

make install
chmod -v 0755 "$out"/lib/preloadable_libintl.so
