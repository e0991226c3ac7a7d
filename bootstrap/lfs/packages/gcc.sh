# GCC (LFS 11.3 §8.28, 12.2.0), the system's compiler, built with gcc pass 2 against chapter 8's
# glibc (glibc-toolchain). Store adaptations:
# - --prefix=$out; the native header directory is the system glibc's (the book's /usr/include), and
#   the target libraries (libgcc_s, libstdc++) link against that glibc with its loader, as pass 2's do
#   against chapter 5's.
# - as and ld are chapter 8's binutils, named at configure time (--with-as/--with-ld), so the
#   compiler does not depend on what PATH holds when it runs.
# - gmp, mpfr and mpc are built in gcc's tree from the same sources as chapter 8's (the book links
#   gcc against those; in the store the compiler comes first and every other package after it is
#   built with it, which the separate libraries would otherwise have to wait for).
# - The kernel's headers are a store path of their own, not in glibc's include directory as in the
#   book's /usr/include: the target libraries get them after glibc's (-idirafter) in CFLAGS and
#   CXXFLAGS, and in CPPFLAGS for their configure scripts' preprocessor checks (glibc's limits.h
#   includes linux/limits.h; without it libgcc's configure finds no working `xgcc -E`). The top-level
#   configure takes CFLAGS_FOR_TARGET but not CPPFLAGS_FOR_TARGET (its Makefile.in has no
#   @CPPFLAGS_FOR_TARGET@): that one is given to make, which hands it to every target library.
# - fixincludes runs, as in the book: it writes the include-fixed/limits.h that chains to glibc's
#   (PATH_MAX, SSIZE_MAX), and gcc's Makefile needs it (--disable-fixincludes stops the build at
#   stmp-fixinc, with no rule for fixinc.sh).
# - No `chown -R root:root` of the installed headers: a store path has no owners (`export` makes
#   every file root's). The test suite is opt-in (`check = true` on the package: hours).
gcc_unpack_libraries
gcc_lib64_to_lib
loader=$(echo "$pkg_glibc"/lib/ld-linux*.so.*)
mkdir -v build
cd build
../configure --prefix="$out" \
    --with-native-system-header-dir="$pkg_glibc/include" \
    --with-as="$pkg_binutils/bin/as" \
    --with-ld="$pkg_binutils/bin/ld" \
    LDFLAGS_FOR_TARGET="-B$pkg_glibc/lib/ -L$pkg_glibc/lib -Wl,-rpath,$pkg_glibc/lib -Wl,-dynamic-linker,$loader" \
    CFLAGS_FOR_TARGET="-O2 -idirafter $pkg_linux_api_headers/include" \
    CXXFLAGS_FOR_TARGET="-O2 -idirafter $pkg_linux_api_headers/include" \
    --enable-languages=c,c++ \
    --enable-default-pie \
    --enable-default-ssp \
    --disable-multilib \
    --disable-bootstrap \
    --with-system-zlib \
    MAKEINFO=true
# The target libraries link against glibc's start files (crti.o …), which LDFLAGS_FOR_TARGET's -B
# names; but the libraries built through libtool (libssp, libstdc++ …) lose that flag (gcc's libtool
# passes no -B on), and xgcc finds no crti.o for their shared objects. A native gcc also looks for
# its start files in LIBRARY_PATH, which libtool leaves alone; install relinks through it too.
export LIBRARY_PATH="$pkg_glibc/lib"
make CPPFLAGS_FOR_TARGET="-idirafter $pkg_linux_api_headers/include"
if [ -n "${doCheck:-}" ]; then
    ulimit -s 32768
    run_tests make -k check
    ../contrib/test_summary
fi
make install
triplet=$("$out/bin/gcc" -dumpmachine)
gccver=$("$out/bin/gcc" -dumpversion)
ln -sv gcc "$out/bin/cc"
mkdir -p "$out/lib/bfd-plugins"
ln -sfv "../../libexec/gcc/$triplet/$gccver/liblto_plugin.so" "$out/lib/bfd-plugins/"
mkdir -pv "$out/share/gdb/auto-load/usr/lib"
mv -v "$out"/lib/*gdb.py "$out/share/gdb/auto-load/usr/lib"
