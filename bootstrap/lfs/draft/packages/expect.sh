# Expect 5.45.4 (LFS 11.3 §8.16), from Debian's orig (upstream's tarball). Store adaptations:
# --prefix=$out, chapter 8's tcl (its dep) named by store path (the book's /usr/lib and
# /usr/include). Expect needs pseudo-terminals: the check from the book's later editions fails
# early, with a clear message, where the sandbox has none.
# Not validated: see the note above its table in lfs-debian-system.toml (scratch build).
python3 -c 'from pty import spawn; spawn(["echo", "ok"])'

./configure --prefix="$out"                     \
            --with-tcl="$pkg_tcl"/lib           \
            --enable-shared                     \
            --mandir="$out"/share/man           \
            --with-tclinclude="$pkg_tcl"/include
make
run_tests make test
make install
ln -svf expect5.45.4/libexpect5.45.4.so "$out"/lib
