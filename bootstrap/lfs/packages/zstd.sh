# Zstd 1.5.4 (LFS 11.3 §8.9) from Debian's repack (1.5.4+dfsg2: files removed that the build does
# not use). Store adaptation: prefix=$out. The zstd program has the library compiled in (upstream's
# default) and links zlib, xz's liblzma and lz4 (its deps), as in the book, where they are in /usr.
# The book: "In the test output there are several places that indicate 'failed'. These are
# expected and only 'FAIL' is an actual test failure" (run_tests looks for FAIL only).
make prefix="$out"
run_tests make check
make prefix="$out" install
rm -v "$out"/lib/libzstd.a
