# Xz 5.4.1 (LFS 11.3 §8.8), from Debian's orig (upstream's tarball). Store adaptation: --prefix=$out.
./configure --prefix="$out"    \
            --disable-static \
            --docdir="$out"/share/doc/xz-5.4.1
make
run_tests make check
make install
