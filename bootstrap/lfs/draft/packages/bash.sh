# bash (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
./configure --prefix="$out"             \
            --without-bash-malloc     \
            --with-installed-readline \
            --docdir="$out"/share/doc/bash-5.2.37

make


su -s "$out"/bin/expect tester << "EOF"
set timeout -1
spawn make tests
expect eof
lassign [wait] _ _ _ value
exit $value
EOF

make install

exec "$out"/bin/bash --login
