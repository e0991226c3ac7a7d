# Gettext 0.21 (LFS 11.3 §8.31), from Debian's orig (upstream's tarball). Store adaptations:
# - --prefix=$out; libtextstyle and the tools link chapter 8's ncurses and acl (deps).
# - msgmerge is an OpenMP program (as the book builds it): libgomp.so.1 is in the compiler's own
#   lib dir, which the system's compiler wrappers put in the RUNPATH of C++ programs only
#   (packages/toolchain.sh), so msgmerge is linked with that directory in its RUNPATH too (its
#   OpenMP flags, the only ones msgmerge alone gets, carry it); without it msgmerge cannot start,
#   and every test that runs it fails.
# - The test suite (about 3 SBU) is run when the package says check = true.
gomp=$(gcc -print-file-name=libgomp.so)
[ "$gomp" != libgomp.so ] || die "the compiler has no libgomp.so"
gomp_dir=$(cd "${gomp%/*}" && pwd -P)
./configure --prefix="$out"    \
            --disable-static \
            --docdir="$out"/share/doc/gettext-0.21 \
            ac_cv_prog_c_openmp="-fopenmp -Wl,-rpath,$gomp_dir"
make
run_tests make check
make install
chmod -v 0755 "$out"/lib/preloadable_libintl.so
