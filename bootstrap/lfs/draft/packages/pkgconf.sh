# pkgconf (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
./configure --prefix="$out"              \
            --disable-static           \
            --docdir="$out"/share/doc/pkgconf-2.3.0

make

make install

ln -sv pkgconf   "$out"/bin/pkg-config
ln -sv pkgconf.1 "$out"/share/man/man1/pkg-config.1
