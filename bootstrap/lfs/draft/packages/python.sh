# python (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
./configure --prefix="$out"        \
            --enable-shared      \
            --with-system-expat  \
            --enable-optimizations

make

run_tests make test TESTOPTS="--timeout 120"

make install

cat > "$out"/etc/pip.conf << EOF
[global]
root-user-action = ignore
disable-pip-version-check = true
EOF

install -v -dm755 "$out"/share/doc/python-3.13.2/html

tar --strip-components=1  \
    --no-same-owner       \
    --no-same-permissions \
    -C "$out"/share/doc/python-3.13.2/html \
    -xvf "$(source_path python-3.13.2-docs-html.tar.bz2)"
