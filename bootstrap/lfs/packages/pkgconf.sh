# Pkgconf 1.8.1: Debian 12 has no pkg-config 0.29.2 source (LFS 11.3 §8.27); its pkg-config is
# pkgconf, which the book's later editions use too: this follows that page (LFS 12.1 §8.28) at
# Debian's version. Store adaptation: --prefix=$out; pkgconf's default search path is its own
# $out/lib/pkgconfig (packages name theirs through PKG_CONFIG_PATH, as in nixpkgs).
./configure --prefix="$out"              \
            --disable-static           \
            --docdir="$out"/share/doc/pkgconf-1.8.1
make
make install
ln -sv pkgconf   "$out"/bin/pkg-config
ln -sv pkgconf.1 "$out"/share/man/man1/pkg-config.1
