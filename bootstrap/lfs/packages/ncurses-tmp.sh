# Ncurses, temporary (LFS 12.3 §6.3), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr. The tic built first runs on the build machine.
# --enable-overwrite: ncurses puts its headers in include/ncursesw/ unless the prefix is /usr, and
# the book (and bash's configure) expect include/curses.h. --enable-widec: the default from 6.5 on,
# what LFS 11.3 passes for 6.4 (the profile from Debian builds 6.4). tic, tput ... link to this
# package's libncursesw, which the book finds in /usr/lib: here an rpath names $out/lib.
mkdir build
pushd build
  ../configure AWK=gawk
  make -C include
  make -C progs tic
popd
./configure --prefix="$out" \
            --host="$LFS_TGT" \
            --build="$(./config.guess)" \
            --mandir="$out/share/man" \
            --with-manpage-format=normal \
            --with-shared \
            --without-normal \
            --with-cxx-shared \
            --without-debug \
            --without-ada \
            --disable-stripping \
            --enable-widec \
            --enable-overwrite \
            LDFLAGS="-Wl,-rpath,$out/lib" \
            AWK=gawk
make
make TIC_PATH="$(pwd)/build/progs/tic" install
ln -sv libncursesw.so "$out/lib/libncurses.so"
sed -e 's/^#if.*XOPEN.*$/#if 1/' -i "$out/include/curses.h"
