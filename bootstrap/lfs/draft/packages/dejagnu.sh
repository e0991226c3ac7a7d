# dejagnu (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
mkdir -v build
cd       build

../configure --prefix="$out"
makeinfo --html --no-split -o doc/dejagnu.html ../doc/dejagnu.texi
makeinfo --plaintext       -o doc/dejagnu.txt  ../doc/dejagnu.texi

run_tests make check

make install
install -v -dm755  "$out"/share/doc/dejagnu-1.6.3
install -v -m644   doc/dejagnu.{html,txt} "$out"/share/doc/dejagnu-1.6.3
