# Binutils (LFS 11.3 §8.18, 2.40), the system's assembler and linker. Store adaptation:
# --prefix=$out and tooldir=$out (the book's tooldir=/usr). The book calls its test suite critical:
# it runs in binutils-check (the same script with BINUTILS_TESTS_ONLY=1 and `check = true`, off the
# build's critical path), whose output is the suites' .sum files, with the failures the book expects
# allowed in the profile. BINUTILS_CONFIGURE adds configure options: the toolchain's binutils, built
# with gcc pass 2 before chapter 8's gcc, leaves out its C++ programs (gold, dwp, gprofng), which
# would link gcc pass 2's libstdc++ and keep it in the closure of gcc and of everything gcc builds;
# the system's binutils, built after gcc with the system's compiler, has them all.
read -ra configure_extra <<< "${BINUTILS_CONFIGURE:-}"
# --enable-deterministic-archives (not the book's): reproducible static libraries, see binutils-pass1.sh.
mkdir -v build
cd build
../configure --prefix="$out" \
             --sysconfdir="$out/etc" \
             --enable-gold \
             --enable-ld=default \
             --enable-plugins \
             --enable-shared \
             --disable-werror \
             --enable-64-bit-bfd \
             --with-system-zlib \
             --enable-deterministic-archives \
             "${configure_extra[@]}"
make tooldir="$out"
if [ -n "${BINUTILS_TESTS_ONLY:-}" ]; then
    run_tests make -k check
    mkdir -p "$out/share/test-results"
    find . -name '*.sum' -exec cp -v {} "$out/share/test-results/" \;
    # without DejaGnu's runtest make -k check runs nothing and fails nothing: no result is no pass
    grep -q '^# of expected passes' "$out"/share/test-results/*.sum 2> /dev/null \
        || die "binutils' make check wrote no results (is DejaGnu among the deps?)"
    return 0
fi
make tooldir="$out" install
rm -fv "$out"/lib/lib{bfd,ctf,ctf-nobfd,opcodes}.a
