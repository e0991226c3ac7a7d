# Less 590: LFS 11.3 (§8.40) has less 608, Debian 12 less 590, built by the same commands (the
# book runs no tests for it). Store adaptation: --prefix=$out, the book's /etc under $out; less
# links chapter 8's ncurses (its dep).
./configure --prefix="$out" --sysconfdir="$out"/etc
make
make install
