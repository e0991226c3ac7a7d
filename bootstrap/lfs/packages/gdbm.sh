# GDBM 1.23 (LFS 11.3 §8.36), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; gdbmtool links chapter 8's readline and ncurses (deps).
./configure --prefix="$out"    \
            --disable-static \
            --enable-libgdbm-compat
make
run_tests make check
make install
