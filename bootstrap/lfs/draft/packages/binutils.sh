# binutils (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
mkdir -v build
cd       build

../configure --prefix="$out"       \
             --sysconfdir="$out"/etc   \
             --enable-ld=default \
             --enable-plugins    \
             --enable-shared     \
             --disable-werror    \
             --enable-64-bit-bfd \
             --enable-new-dtags  \
             --with-system-zlib  \
             --enable-default-hash-style=gnu

make tooldir="$out"

run_tests make -k check

find . -name '*.log' -exec grep '^FAIL:' {} + || true

make tooldir="$out" install

rm -rfv "$out"/lib/lib{bfd,ctf,ctf-nobfd,gprofng,opcodes,sframe}.a \
        "$out"/share/doc/gprofng/
