# Psmisc 23.6 (LFS 11.3 §8.30), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; pstree links chapter 8's ncurses (its dep). The book runs no tests here.
./configure --prefix="$out"
make
make install
