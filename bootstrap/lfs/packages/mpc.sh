# MPC 1.3.1 (LFS 11.3 §8.21), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; chapter 8's gmp and mpfr are deps.
./configure --prefix="$out"    \
            --disable-static \
            --docdir="$out"/share/doc/mpc-1.3.1
make
make html
run_tests make check
make install
make install-html
