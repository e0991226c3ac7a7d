# Patch 2.7.6 (LFS 11.3, the version Debian 12 carries), from Debian's orig (upstream's
# tarball). Store adaptation: --prefix=$out; chapter 8's attr (its dep) for extended attributes.
./configure --prefix="$out"

make

run_tests make check

make install
