# File 5.44 (LFS 11.3 §8.10), from Debian's orig (upstream's tarball). Store adaptation: --prefix=$out;
# libmagic links zlib, bzip2, xz and zstd (its deps) as the book's does from /usr.
./configure --prefix="$out"
make
run_tests make check
make install
