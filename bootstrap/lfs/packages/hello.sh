# GNU Hello: not in the book; the smallest real GNU package, for the CI profile.
./configure --prefix="$out"
make
run_tests make check
make install
