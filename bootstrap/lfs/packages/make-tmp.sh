# Make, temporary (LFS 12.3 §6.12), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr.
# Upstream's release tarball has `configure`. Debian's make-dfsg 4.3 orig is upstream's git tree
# without generated files and without doc/ (the GFDL manual is removed): then `configure` and the
# Makefile.in files are generated here with autoconf-tmp and automake-tmp (built from their upstream
# releases in this stage), as Debian's own build does, after the same two edits as Debian's diff: no
# doc/make.1 to install (the repack dropped it), and `Makefile` listed once in AC_CONFIG_FILES.
# Gettext's files (m4/gettext.m4, po/Makefile.in.in) are in the orig, so autopoint is not needed.
# configure.ac probes for Guile with pkg-config's macros, which this stage does not have; make is
# configured --without-guile (as in the book), so they are defined to take their "not found" branch.
if [ ! -e configure ]; then
    sed -i 's|^man_MANS = .*|man_MANS =|' Makefile.am
    sed -i 's|po/Makefile.in Makefile \\$|po/Makefile.in \\|' configure.ac
    cat > m4/storekit-no-pkg-config.m4 <<'M4'
m4_ifndef([PKG_CHECK_EXISTS], [AC_DEFUN([PKG_CHECK_EXISTS], [: $3])])
m4_ifndef([PKG_CHECK_MODULES], [AC_DEFUN([PKG_CHECK_MODULES], [: $4])])
M4
    AUTOPOINT=true autoreconf -fi
fi
./configure --prefix="$out" \
            --without-guile \
            --host="$LFS_TGT" \
            --build="$(build-aux/config.guess)"
make
make install
