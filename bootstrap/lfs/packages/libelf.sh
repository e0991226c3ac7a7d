# Libelf from Elfutils 0.188 (LFS 11.3), from Debian's orig (upstream's tarball). Store
# adaptation: --prefix=$out; chapter 8's zlib, bzip2, xz and zstd (deps) for compressed sections.
# The whole of elfutils is built and tested, only libelf installed, as in the book.
./configure --prefix="$out"                \
            --disable-debuginfod         \
            --enable-libdebuginfod=dummy

make

run_tests make check

make -C libelf install
install -vDm644 config/libelf.pc -t "$out"/lib/pkgconfig
rm "$out"/lib/libelf.a
