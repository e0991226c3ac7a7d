# Acl 2.3.1 (LFS 11.3 §8.23), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out. No tests: the book runs them only after coreutils is built with acl, on a file
# system with access control lists.
./configure --prefix="$out"         \
            --disable-static      \
            --docdir="$out"/share/doc/acl-2.3.1
make
make install
