# Zlib (LFS 11.3 §8.6) from Debian's repack (1.2.13.dfsg: contrib/ and the prebuilt Windows files
# removed, nothing the book's build uses). Store adaptation: --prefix=$out.
./configure --prefix="$out"
make
run_tests make check
make install
rm -fv "$out/lib/libz.a"
