# Autoconf 2.71 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; chapter 8's m4 and perl (deps) are what its programs run. The book's edit of
# tests/local.at: bash 5.2 sets SHLVL differently, which the tests would report as a change.
sed -e 's/SECONDS|/&SHLVL|/'               \
    -e '/BASH_ARGV=/a\        /^SHLVL=/ d' \
    -i.orig tests/local.at

./configure --prefix="$out"

make

run_tests make check TESTSUITEFLAGS=-j"${NIX_BUILD_CORES:-1}"

make install
