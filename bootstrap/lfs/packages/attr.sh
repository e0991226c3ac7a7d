# Attr 2.5.1 (LFS 11.3 §8.22), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out, the book's /etc under $out. The tests need a file system with extended attributes
# (the book: ext2/3/4), as the build directory has. The test driver, test/run, is a perl script
# whose #! line names /usr/bin/perl, which no sandbox has: make runs it with the perl on PATH, and
# the filter the tests pipe getfattr's output through (test/sort-getfattr-output, a perl script of
# the build tree, not installed) gets the #! line of the perl on PATH.
./configure --prefix="$out"     \
            --disable-static  \
            --sysconfdir="$out"/etc \
            --docdir="$out"/share/doc/attr-2.5.1
make
sed -i "1s|^#! */usr/bin/perl|#!$(command -v perl)|" test/sort-getfattr-output
run_tests make check VERBOSE=1 TEST_LOG_COMPILER="perl -w -U ./test/run"
make install
