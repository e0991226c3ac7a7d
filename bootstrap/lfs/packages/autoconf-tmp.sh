# Autoconf for chapter 6's make (not a book page). Debian's make orig is a source snapshot without
# `configure`; the honest way to build it is to generate one, as Debian's own build does
# (dh_autoreconf). Autoconf is architecture-independent perl and m4, so it is built here with the
# seed's perl and m4 (the book builds it in chapter 8) and installed at its own store path, which its
# scripts then name: nothing refers to the host's /usr/share/autoconf.
./configure --prefix="$out"
make
make install
