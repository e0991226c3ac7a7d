# Bash, temporary (LFS 12.3 §6.4), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr. Ncurses is found at its store path.
./configure --prefix="$out" \
            --build="$(sh support/config.guess)" \
            --host="$LFS_TGT" \
            --without-bash-malloc \
            CPPFLAGS="-I$pkg_ncurses_tmp/include" \
            LDFLAGS="-L$pkg_ncurses_tmp/lib -Wl,-rpath,$pkg_ncurses_tmp/lib"
make
make install
ln -sv bash "$out/bin/sh"
