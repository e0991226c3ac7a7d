# Psmisc 23.6 (LFS 11.3 §8.30), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; pstree links chapter 8's ncurses (its dep). The book runs no tests here.
# Not built yet (neither in a scratch profile nor in the real chain).
./configure --prefix="$out"
make
make install
