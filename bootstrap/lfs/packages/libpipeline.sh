# Libpipeline 1.5.7 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out. Its tests use Check (chapter 8's, a dep), which configure finds with pkgconf (a
# dep) in check's lib/pkgconfig.
export PKG_CONFIG_PATH="$pkg_check/lib/pkgconfig"
./configure --prefix="$out"

make

run_tests make check

make install
