# Groff 1.22.4 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; chapter 8's perl (a dep) runs its Perl programs (grog, mmroff …). PAGE: the
# book's choice for the reader's paper, A4 here (letter is the other).
PAGE=A4 ./configure --prefix="$out"

make

run_tests make check

make install
