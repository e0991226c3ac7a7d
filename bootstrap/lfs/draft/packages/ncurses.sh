# ncurses (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
./configure --prefix="$out"           \
            --mandir="$out"/share/man \
            --with-shared           \
            --without-debug         \
            --without-normal        \
            --with-cxx-shared       \
            --enable-pc-files       \
            --with-pkg-config-libdir="$out"/lib/pkgconfig

make

make DESTDIR="$PWD"/dest install
install -vm755 dest/usr/lib/libncursesw.so.6.5 "$out"/lib
rm -v  dest/usr/lib/libncursesw.so.6.5
sed -e 's/^#if.*XOPEN.*$/#if 1/' \
    -i dest/usr/include/curses.h
cp -av dest/* /

for lib in ncurses form panel menu ; do
    ln -sfv lib${lib}w.so "$out"/lib/lib${lib}.so
    ln -sfv ${lib}w.pc    "$out"/lib/pkgconfig/${lib}.pc
done

ln -sfv libncursesw.so "$out"/lib/libcurses.so

cp -v -R doc -T "$out"/share/doc/ncurses-6.5

make distclean
./configure --prefix="$out"    \
            --with-shared    \
            --without-normal \
            --without-debug  \
            --without-cxx-binding \
            --with-abi-version=5
make sources libs
cp -av lib/lib*.so.5* "$out"/lib
