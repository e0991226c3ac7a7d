# Check 0.15.2 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out.
./configure --prefix="$out" --disable-static

make

run_tests make check

make docdir="$out"/share/doc/check-0.15.2 install
