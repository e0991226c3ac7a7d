# Gettext, temporary (LFS 12.3 §7.7): only msgfmt, msgmerge and xgettext are installed, built
# without shared libraries, with chapter 6's tools (the native toolchain, first on PATH).
# Store adaptation: the three programs are copied into $out/bin instead of /usr/bin.
./configure --disable-shared
make
mkdir -p "$out/bin"
cp -v gettext-tools/src/{msgfmt,msgmerge,xgettext} "$out/bin"
