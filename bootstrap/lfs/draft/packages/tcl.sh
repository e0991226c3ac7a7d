# Tcl 8.6.13 (LFS 11.3 §8.15) from Debian's repack (8.6.13+dfsg: pkgs/ removed, the bundled itcl,
# thread, tdbc and sqlite packages Debian builds from their own sources). Tcl itself is all the
# book's later packages use (expect, dejagnu), so the book's edits of tdbcConfig.sh and
# itclConfig.sh have nothing to edit; the book's optional HTML documentation is not in Debian.
# Store adaptations: --prefix=$out; tclConfig.sh names $out/lib and $out/include instead of the
# build tree (the book's /usr/lib and /usr/include); tclsh keeps its rpath to $out/lib.
# Not validated: see the note above its table in lfs-debian-system.toml (scratch build).
SRCDIR=$(pwd)
cd unix
./configure --prefix="$out"           \
            --mandir="$out"/share/man
make

sed -e "s|$SRCDIR/unix|$out/lib|" \
    -e "s|$SRCDIR|$out/include|"  \
    -i tclConfig.sh
unset SRCDIR

# Tcl's `make test` exits 0 whatever fails: the summary line decides (and run_tests then names the
# failed tests, which allowed_test_failures can list).
run_tests sh -c 'make test 2>&1 | tee tcl-tests.log; ! grep -q "^all.tcl:.*Failed[[:space:]]*[1-9]" tcl-tests.log'
make install
chmod -v u+w "$out"/lib/libtcl8.6.so
make install-private-headers
ln -sfv tclsh8.6 "$out"/bin/tclsh
mv "$out"/share/man/man3/Thread.3 "$out"/share/man/man3/Tcl_Thread.3
