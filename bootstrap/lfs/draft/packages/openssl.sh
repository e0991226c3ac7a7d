# openssl (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
./config --prefix="$out"         \
         --openssldir="$out"/etc/ssl \
         --libdir=lib          \
         shared                \
         zlib-dynamic

make

HARNESS_JOBS=$(nproc) make test

sed -i '/INSTALL_LIBS/s/libcrypto.a libssl.a//' Makefile
make MANSUFFIX=ssl install

mv -v "$out"/share/doc/openssl "$out"/share/doc/openssl-3.4.1

cp -vfr doc/* "$out"/share/doc/openssl-3.4.1
