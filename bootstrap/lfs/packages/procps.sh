# Procps-ng 4.0.2 (LFS 11.3, the sysvinit edition: no --with-systemd), from Debian's orig
# (upstream's tarball). Store adaptation: --prefix=$out; chapter 8's ncurses (a dep) for top,
# watch and slabtop, which configure finds with pkgconf (a dep) in ncurses' lib/pkgconfig. kill is
# util-linux's (--disable-kill), as in the book.
export PKG_CONFIG_PATH="$pkg_ncurses/lib/pkgconfig"
./configure --prefix="$out"                            \
            --docdir="$out"/share/doc/procps-ng-4.0.2 \
            --disable-static                         \
            --disable-kill

make

run_tests make check

make install
