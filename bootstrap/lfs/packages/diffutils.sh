# Diffutils 3.8 (LFS 11.3 §8.58, for 3.9: the same commands), from Debian's orig (upstream's
# tarball). Store adaptation: --prefix=$out.
./configure --prefix="$out"

make

run_tests make check

make install
