# util-linux (LFS 12.3 chapter 7), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
mkdir -pv $out/var/lib/hwclock

./configure --libdir=$out/lib     \
            --runstatedir=/run    \
            --disable-chfn-chsh   \
            --disable-login       \
            --disable-nologin     \
            --disable-su          \
            --disable-setpriv     \
            --disable-runuser     \
            --disable-pylibmount  \
            --disable-static      \
            --disable-liblastlog2 \
            --without-python      \
            ADJTIME_PATH=$out/var/lib/hwclock/adjtime \
            --docdir=$out/share/doc/util-linux-2.40.4

make

make install
