# Binutils pass 2 (LFS 12.3 §6.17), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr. The ltmain.sh line the book edits depends on the version: BINUTILS_LTMAIN_LINE.
# The programs link to this package's shared libbfd, libctf, libsframe: in the book they are found
# in /usr/lib; here an rpath names $out/lib.
sed "${BINUTILS_LTMAIN_LINE:-6031}s/\$add_dir//" -i ltmain.sh
# --enable-deterministic-archives (not the book's): reproducible static libraries, see binutils-pass1.sh.
mkdir -v build
cd build
../configure \
    --prefix="$out" \
    --build="$(../config.guess)" \
    --host="$LFS_TGT" \
    --disable-nls \
    --enable-shared \
    --enable-gprofng=no \
    --disable-werror \
    --enable-64-bit-bfd \
    --enable-new-dtags \
    --enable-default-hash-style=gnu \
    --enable-deterministic-archives \
    LDFLAGS="-Wl,-rpath,$out/lib" \
    MAKEINFO=true
make
make install
rm -fv "$out"/lib/lib{bfd,ctf,ctf-nobfd,opcodes,sframe}.a
