# DejaGNU 1.6.3 (LFS 11.3 §8.17), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; chapter 8's expect (its dep) is the one on PATH.
mkdir -v build
cd       build
../configure --prefix="$out"
makeinfo --html --no-split -o doc/dejagnu.html ../doc/dejagnu.texi
makeinfo --plaintext       -o doc/dejagnu.txt  ../doc/dejagnu.texi
make install
install -v -dm755  "$out"/share/doc/dejagnu-1.6.3
install -v -m644   doc/dejagnu.html doc/dejagnu.txt "$out"/share/doc/dejagnu-1.6.3
run_tests make check
