# Expat 2.5.0 (LFS 11.3 §8.38). Debian's orig is upstream's git tag (libexpat-R_2_5_0/expat/…),
# not the release tarball: no configure, no prebuilt xmlwf.1. As Debian's own build does, the build
# system is generated (expat's buildconf.sh: autoreconf, then an edit of expat_config.h.in) with
# chapter 6's autoconf and automake and chapter 8's libtool (a dep; ACLOCAL_PATH is how aclocal finds
# its macros), and configured --without-docbook (the xmlwf man page needs docbook2x, which LFS does
# not have). Store adaptation: --prefix=$out.
cd expat
export ACLOCAL_PATH="$pkg_libtool/share/aclocal"
bash ./buildconf.sh
./configure --prefix="$out"    \
            --disable-static \
            --without-docbook \
            --docdir="$out"/share/doc/expat-2.5.0
make
# the tests run through test-driver-wrapper.sh and run.sh (configure's), whose #! lines are
# /usr/bin/env bash: the sandbox has no /usr/bin/env, and "cannot execute" fails every test. Both
# are build-tree files, not installed: they get the bash on PATH.
sed -i "1s|^#! */usr/bin/env bash|#!$(command -v bash)|" test-driver-wrapper.sh run.sh
run_tests make check VERBOSE=1
make install
install -v -m644 doc/*.html doc/*.css "$out"/share/doc/expat-2.5.0
