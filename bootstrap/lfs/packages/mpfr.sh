# MPFR 4.2.0 (LFS 11.3 §8.20), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; chapter 8's gmp is a dep. The book: the tests are critical (all must pass).
./configure --prefix="$out"        \
            --disable-static     \
            --enable-thread-safe \
            --docdir="$out"/share/doc/mpfr-4.2.0
make
make html
run_tests make check
make install
make install-html
