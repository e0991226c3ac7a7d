# Libtool 2.4.7 (LFS 11.3 §8.35), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out. The book expects five test failures (automake's version); the test suite takes
# about 1.5 SBU and is run when the package says check = true.
# Not built yet (neither in a scratch profile nor in the real chain).
./configure --prefix="$out"
make
run_tests make -k check
make install
rm -fv "$out"/lib/libltdl.a
