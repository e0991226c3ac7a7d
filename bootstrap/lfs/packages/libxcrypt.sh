# Libxcrypt 4.4.33: not a page of LFS 11.3 (glibc 2.36 still has its own libcrypt); Debian 12
# builds its libcrypt from libxcrypt, and the book's later editions do too: this follows that page
# (LFS 12.0 §8.26) at Debian's version. Store adaptations:
# - Debian's orig is upstream's git tree without `configure`: it is generated as Debian's own build
#   does (dh_autoreconf), with chapter 6's autoconf and automake, chapter 8's libtool and pkgconf's
#   pkg.m4 (deps; ACLOCAL_PATH is how aclocal finds macros outside its own prefix).
# - --prefix=$out. The book's optional second build (libcrypt.so.1 with the obsolete API, for old
#   binary-only programs) is left out.
export ACLOCAL_PATH="$pkg_libtool/share/aclocal:$pkg_pkgconf/share/aclocal"
autoreconf -fi
./configure --prefix="$out"                \
            --enable-hashes=strong,glibc \
            --enable-obsolete-api=no     \
            --disable-static             \
            --disable-failure-tokens
make
run_tests make check
make install
