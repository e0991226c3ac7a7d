# Gzip 1.12 (LFS 11.3, the version Debian 12 carries), from Debian's orig (upstream's tarball).
# Store adaptation: --prefix=$out. Its help-version test runs zmore, which runs more(1): chapter 7's
# util-linux has it (a scratch profile without chapter 7 has to allow that test to fail).
./configure --prefix="$out"

make

run_tests make check

make install
