# Automake 1.16.5 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; chapter 8's autoconf and perl (deps). The book runs the tests with at least four
# jobs (they wait on each other more than they compute).
./configure --prefix="$out" --docdir="$out"/share/doc/automake-1.16.5

make

jobs=${NIX_BUILD_CORES:-1}
run_tests make -j"$(( jobs > 4 ? jobs : 4 ))" check

make install
