# tcl (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
SRCDIR=$(pwd)
cd unix
./configure --prefix="$out"           \
            --mandir="$out"/share/man \
            --disable-rpath

make

sed -e "s|$SRCDIR/unix|/usr/lib|" \
    -e "s|$SRCDIR|/usr/include|"  \
    -i tclConfig.sh

sed -e "s|$SRCDIR/unix/pkgs/tdbc1.1.10|/usr/lib/tdbc1.1.10|" \
    -e "s|$SRCDIR/pkgs/tdbc1.1.10/generic|/usr/include|"    \
    -e "s|$SRCDIR/pkgs/tdbc1.1.10/library|/usr/lib/tcl8.6|" \
    -e "s|$SRCDIR/pkgs/tdbc1.1.10|/usr/include|"            \
    -i pkgs/tdbc1.1.10/tdbcConfig.sh

sed -e "s|$SRCDIR/unix/pkgs/itcl4.3.2|/usr/lib/itcl4.3.2|" \
    -e "s|$SRCDIR/pkgs/itcl4.3.2/generic|/usr/include|"    \
    -e "s|$SRCDIR/pkgs/itcl4.3.2|/usr/include|"            \
    -i pkgs/itcl4.3.2/itclConfig.sh

unset SRCDIR

run_tests make test

make install

chmod -v u+w "$out"/lib/libtcl8.6.so

make install-private-headers

ln -sfv tclsh8.6 "$out"/bin/tclsh

mv "$out"/share/man/man3/{Thread,Tcl_Thread}.3

cd ..
tar -xf "$(source_path tcl8.6.16-html.tar.gz)" --strip-components=1
mkdir -v -p "$out"/share/doc/tcl-8.6.16
cp -v -r  ./html/* "$out"/share/doc/tcl-8.6.16
