# Findutils 4.9.0 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptations:
# --prefix=$out, and the book's /var/lib/locate (locate's database) under $out. The book runs the
# tests as the unprivileged `tester`; the sandbox's builder is unprivileged already.
./configure --prefix="$out" --localstatedir="$out"/var/lib/locate

make

run_tests make check

make install
