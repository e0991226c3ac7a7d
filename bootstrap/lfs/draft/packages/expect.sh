# expect (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
python3 -c 'from pty import spawn; spawn(["echo", "ok"])'


./configure --prefix="$out"           \
            --with-tcl="$out"/lib     \
            --enable-shared         \
            --disable-rpath         \
            --mandir="$out"/share/man \
            --with-tclinclude="$out"/include

make

run_tests make test

make install
ln -svf expect5.45.4/libexpect5.45.4.so "$out"/lib
