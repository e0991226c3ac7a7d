# Tar 1.34 (LFS 11.3) from Debian's repack (1.34+dfsg: the GFDL manual removed, doc/'s
# Makefile a stub that builds and installs nothing). Store adaptation: --prefix=$out; chapter 8's
# acl and attr (deps) for --acls and --xattrs. Without the manual, no `make -C doc install-html`.
FORCE_UNSAFE_CONFIGURE=1  \
./configure --prefix="$out"

make

run_tests make check

make install
