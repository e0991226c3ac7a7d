# Lz4 (LFS 12.1 §8.9; LFS 11.3 has no lz4 page) at Debian's 1.9.4, from Debian's orig (upstream's
# tarball). Store adaptations: PREFIX=$out; the programs link liblz4.so from $out/lib, so they get
# an rpath to it (the book finds it in /usr/lib).
make BUILD_STATIC=no PREFIX="$out" LDFLAGS="-Wl,-rpath,$out/lib"
run_tests make -j1 check
make BUILD_STATIC=no PREFIX="$out" LDFLAGS="-Wl,-rpath,$out/lib" install
