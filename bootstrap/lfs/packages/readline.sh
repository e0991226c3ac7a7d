# Readline 8.2 (LFS 11.3 §8.11), from Debian's orig (upstream's tarball), with readline's upstream
# fix the book applies as readline-8.2-upstream_fix-1.patch (the profile's patches). Store
# adaptations: --prefix=$out; chapter 8's ncurses is a dep (in the book readline comes first and
# links the temporary ncurses; in the store the libraries a package links must be chapter 8's),
# and the shared libraries get an rpath to it and to $out/lib.
sed -i '/MV.*old/d' Makefile.in
sed -i '/{OLDSUFF}/c:' support/shlib-install

./configure --prefix="$out"    \
            --disable-static \
            --with-curses    \
            --docdir="$out"/share/doc/readline-8.2
make SHLIB_LIBS="-lncursesw"
make SHLIB_LIBS="-lncursesw" install
install -v -m644 doc/*.ps doc/*.pdf doc/*.html doc/*.dvi "$out"/share/doc/readline-8.2
