# Gperf 3.1 (LFS 11.3 §8.37), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out. The book runs the tests with -j1 (they fail in parallel).
./configure --prefix="$out" --docdir="$out"/share/doc/gperf-3.1
make
run_tests make -j1 check
make install
