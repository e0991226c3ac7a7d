# Make 4.3 (LFS 11.2 §8.67: 11.3 has 4.4, whose SIGPIPE edit is for 4.4's code) from Debian's
# make-dfsg 4.3 orig: upstream's git tree without generated files and without doc/ (the GFDL
# manual). Store adaptations:
# - --prefix=$out.
# - `configure` and the Makefile.in files are generated with the temporary system's autoconf and
#   automake (chapter 6's autoconf-tmp and automake-tmp: the stage sees chapter 6), as
#   packages/make-tmp.sh does and for the same reasons: no doc/make.1 to install, `Makefile`
#   listed once in AC_CONFIG_FILES, pkg-config's Guile probes defined to take their "not found"
#   branch (no Guile in LFS; the book's configure finds none either).
if [ ! -e configure ]; then
    sed -i 's|^man_MANS = .*|man_MANS =|' Makefile.am
    sed -i 's|po/Makefile.in Makefile \\$|po/Makefile.in \\|' configure.ac
    cat > m4/storekit-no-pkg-config.m4 <<'M4'
m4_ifndef([PKG_CHECK_EXISTS], [AC_DEFUN([PKG_CHECK_EXISTS], [: $3])])
m4_ifndef([PKG_CHECK_MODULES], [AC_DEFUN([PKG_CHECK_MODULES], [: $4])])
M4
    AUTOPOINT=true autoreconf -fi
fi

./configure --prefix="$out" --without-guile

make

run_tests make check

make install
