# Ncurses 6.4 (LFS 11.3 §8.28), from Debian's orig (upstream's tarball). Store adaptations:
# - --prefix=$out, installed straight into $out: the book installs through DESTDIR so that running
#   programs do not crash when their libncursesw is replaced, which cannot happen in a new path.
# - --enable-overwrite: ncurses puts its headers in include/ncursesw/ unless the prefix is /usr;
#   the book (and readline's, bash's … configure) expect include/curses.h.
# - the programs (tic, tput …) and libraries get an rpath to $out/lib (the book's /usr/lib).
./configure --prefix="$out"           \
            --mandir="$out"/share/man \
            --with-shared           \
            --without-debug         \
            --without-normal        \
            --with-cxx-shared       \
            --enable-pc-files       \
            --enable-widec          \
            --enable-overwrite      \
            --with-pkg-config-libdir="$out"/lib/pkgconfig \
            LDFLAGS="-Wl,-rpath,$out/lib"
make
make install
# the book: headers that work with wide characters whatever the feature macros
sed -e 's/^#if.*XOPEN.*$/#if 1/' -i "$out"/include/curses.h

# programs that ask for the non-wide libraries get the wide ones (linker scripts, as the book)
for lib in ncurses form panel menu ; do
    rm -vf                    "$out/lib/lib${lib}.so"
    echo "INPUT(-l${lib}w)" > "$out/lib/lib${lib}.so"
    ln -sfv "${lib}w.pc"      "$out/lib/pkgconfig/${lib}.pc"
done
rm -vf                     "$out"/lib/libcursesw.so
echo "INPUT(-lncursesw)" > "$out"/lib/libcursesw.so
ln -sfv libncurses.so      "$out"/lib/libcurses.so

mkdir -pv      "$out"/share/doc/ncurses-6.4
cp -v -R doc/* "$out"/share/doc/ncurses-6.4
# the installed tput finds its library and the terminfo database
TERM=vt100 "$out"/bin/tput cols > /dev/null
