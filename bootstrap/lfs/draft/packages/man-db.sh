# man-db (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
./configure --prefix="$out"                         \
            --docdir="$out"/share/doc/man-db-2.13.0 \
            --sysconfdir="$out"/etc                     \
            --disable-setuid                      \
            --enable-cache-owner=bin              \
            --with-browser="$out"/bin/lynx          \
            --with-vgrind="$out"/bin/vgrind         \
            --with-grap="$out"/bin/grap

./configure --prefix="$out"                         \
            --docdir="$out"/share/doc/man-db-2.13.0 \
            --sysconfdir="$out"/etc                     \
            --disable-setuid                      \
            --enable-cache-owner=bin              \
            --with-browser="$out"/bin/lynx          \
            --with-vgrind="$out"/bin/vgrind         \
            --with-grap="$out"/bin/grap             \
            --with-systemdtmpfilesdir=            \
            --with-systemdsystemunitdir=

make

run_tests make check

make install
