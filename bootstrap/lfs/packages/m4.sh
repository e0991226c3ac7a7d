# M4 (LFS 12.3 §8.13; also the CI profile's stage 1). The book installs into /usr; here into $out.
./configure --prefix="$out"
make
run_tests make check
make install
