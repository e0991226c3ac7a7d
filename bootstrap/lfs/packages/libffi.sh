# Libffi 3.4.4 (LFS 11.3, the version Debian 12 carries), from Debian's orig (upstream's
# tarball). Store adaptation: --prefix=$out. --with-gcc-arch=native is the book's: the library is
# tuned to the building machine's processor (the book's own caveat for another machine applies).
# The tests run with DejaGNU (its table's deps).
./configure --prefix="$out"          \
            --disable-static       \
            --with-gcc-arch=native

make

run_tests make check

make install
