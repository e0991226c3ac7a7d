# Kbd 2.5.1 (LFS 11.3) from Debian's orig: kbd's git tree at 2.5.1, without generated files.
# Store adaptations:
# - `configure` and the Makefile.in files are generated (autoreconf, as kbd's autogen.sh does:
#   autopoint, libtoolize, aclocal, autoconf, autoheader, automake) with chapter 6's autoconf and
#   automake (the stage sees chapter 6), chapter 8's gettext and libtool (deps); bison and flex
#   (deps) make loadkeys' parser, which a release tarball carries made. The book's two edits (no
#   resizecons) go to configure.ac and Makefile.am, which configure and Makefile.in are made from.
# - Without LFS's kbd-2.5.1-backspace-1.patch (the book's own; not among Debian's sources here):
#   the i386 keymaps keep upstream's Backspace and Delete.
# - --prefix=$out.
# - contrib/gen_charset_syms.pl, which makes libkeymap's charset tables, starts `#!/usr/bin/env
#   perl`: the sandbox has no /usr/bin/env, so it names the perl on PATH.
sed -i "1s|^#!/usr/bin/env perl\$|#!$(command -v perl)|" contrib/gen_charset_syms.pl
head -n1 contrib/gen_charset_syms.pl | grep -q "^#!/.*/perl$" || die "gen_charset_syms.pl: unexpected first line"
sed -i '/RESIZECONS_PROGS=/s/yes/no/' configure.ac
sed -i 's/resizecons.8 //' docs/man/man8/Makefile.am
if [ ! -e configure ]; then
    export ACLOCAL_PATH="$pkg_gettext/share/aclocal:$pkg_libtool/share/aclocal"
    autoreconf -fi
fi

./configure --prefix="$out" --disable-vlock

make

run_tests make check

make install

mkdir -pv "$out"/share/doc/kbd-2.5.1
cp -R -v docs/doc/* "$out"/share/doc/kbd-2.5.1
