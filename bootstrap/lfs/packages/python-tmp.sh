# Python, temporary (LFS 12.3 §7.10), with chapter 6's tools: shared, without pip. Modules whose
# libraries chapter 6 lacks (zlib, ssl, ffi …) are left out, as in the book.
# Store adaptation: --prefix=$out, and an rpath to $out/lib so python3 finds libpython3.
./configure --prefix="$out" \
            --enable-shared \
            --without-ensurepip \
            LDFLAGS="-Wl,-rpath,$out/lib"
make
make install
