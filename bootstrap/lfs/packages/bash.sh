# Bash 5.2.15 (LFS 11.3 §8.34) from Debian's repack (5.2.15: the non-free doc files removed, which
# the build does not use; as chapter 6's bash-tmp). Store adaptations: --prefix=$out; the installed
# readline is chapter 8's (a dep), and ncurses for its terminal library. The book runs the tests
# as the unprivileged `tester` through expect (they need a terminal); the sandbox's builder is
# unprivileged already, so expect (a dep) runs them directly. `exec bash --login` is for a person.
./configure --prefix="$out"             \
            --without-bash-malloc     \
            --with-installed-readline \
            --docdir="$out"/share/doc/bash-5.2.15
make
# shellcheck disable=SC2016 # $value is expect's (Tcl), not the shell's
run_tests expect -c 'set timeout -1
spawn make tests
expect eof
lassign [wait] _ _ _ value
exit $value'
make install
# /bin/sh of the system, as chapter 6 makes it (§6.4); chapter 8 replaces that bash
ln -sv bash "$out"/bin/sh
