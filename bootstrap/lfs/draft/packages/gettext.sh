# Gettext 0.21 (LFS 11.3 §8.31), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; libtextstyle and the tools link chapter 8's ncurses and acl (deps). The test
# suite (about 3 SBU) is run when the package says check = true.
# Not built yet (neither in a scratch profile nor in the real chain).
./configure --prefix="$out"    \
            --disable-static \
            --docdir="$out"/share/doc/gettext-0.21
make
run_tests make check
make install
chmod -v 0755 "$out"/lib/preloadable_libintl.so
