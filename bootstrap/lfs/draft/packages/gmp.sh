# gmp (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
ABI=32 ./configure ...

./configure --prefix="$out"    \
            --enable-cxx     \
            --disable-static \
            --docdir="$out"/share/doc/gmp-6.3.0

make
make html

run_tests make check 2>&1 | tee gmp-check-log

awk '/# PASS:/{total+=$3} ; END{print total}' gmp-check-log

make install
make install-html
