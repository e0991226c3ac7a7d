# bc: Debian 12 carries GNU bc 1.07.1, not the book's (LFS 11.3 §8.13) Gavin Howard bc 6.2.4, so
# this follows the book's last GNU bc page (LFS 8.4 §6.36, bc 1.07.1). Store adaptations:
# --prefix=$out; readline and ncurses are chapter 8's (deps), so the book's temporary
# libncurses links are not needed.
# - bc builds libmath.h by running the bc it just built; its fix-libmath_h edits the result with ed,
#   which LFS does not have: the book replaces it with sed (run by /bin/sh: the sandbox has no
#   /bin/bash, which the book's version names).
# - configure insists on flex, which comes later in the book; bc.c and scan.c are in the tarball.
cat > bc/fix-libmath_h << "FIX"
#! /bin/sh
sed -e '1   s/^/{"/' \
    -e     's/$/",/' \
    -e '2,$ s/^/"/'  \
    -e   '$ d'       \
    -i libmath.h

sed -e '$ s/$/0}/' \
    -i libmath.h
FIX
sed -i -e '/flex/s/as_fn_error/: ;; # &/' configure

./configure --prefix="$out"           \
            --with-readline           \
            --mandir="$out"/share/man \
            --infodir="$out"/share/info
make
# the book's test: bc's own math library checks, which print their results and stop on an error
run_tests sh -c 'echo "quit" | ./bc/bc -l Test/checklib.b'
make install
