# Attr 2.5.1 (LFS 11.3 §8.22), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out, the book's /etc under $out. The tests need a file system with extended attributes
# (the book: ext2/3/4), as the build directory has. The test driver, test/run, is a perl script
# whose #! line names /usr/bin/perl, which no sandbox has: make runs it with the perl on PATH.
# Not validated: see the note above its table in lfs-debian-system.toml (scratch build).
./configure --prefix="$out"     \
            --disable-static  \
            --sysconfdir="$out"/etc \
            --docdir="$out"/share/doc/attr-2.5.1
make
run_tests make check TEST_LOG_COMPILER="perl -w -U ./test/run"
make install
