# GCC pass 2 (LFS 12.3 §6.18), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr.
# The book's --with-build-sysroot=$LFS becomes the store paths of chapter 5's glibc and kernel
# headers: the native header dir is glibc's, and the target libraries link against that glibc.
gcc_unpack_libraries  # mpfr, gmp, mpc in gcc's tree (builder helpers, as in pass 1)
gcc_lib64_to_lib
sed '/thread_header =/s/@.*@/gthr-posix.h/' -i libgcc/Makefile.in libstdc++-v3/include/Makefile.in

# The cross-toolchain's $LFS_TGT-g++ adds chapter 5's libstdc++ headers (gcc's own C++ code needs
# them); libstdc++'s own compiles pass -nostdinc++ and then get none of them (see wrap_cc).
loader=$(echo "$pkg_glibc_cross"/lib/ld-linux*.so.*)
mkdir -v build
cd build
../configure \
    --build="$(../config.guess)" \
    --host="$LFS_TGT" \
    --target="$LFS_TGT" \
    LDFLAGS_FOR_TARGET="-L$PWD/$LFS_TGT/libgcc -B$pkg_glibc_cross/lib/ -L$pkg_glibc_cross/lib -Wl,-rpath,$pkg_glibc_cross/lib -Wl,-dynamic-linker,$loader" \
    CFLAGS_FOR_TARGET="-O2 -idirafter $pkg_linux_headers/include" \
    CXXFLAGS_FOR_TARGET="-O2 -idirafter $pkg_linux_headers/include" \
    --prefix="$out" \
    --with-native-system-header-dir="$pkg_glibc_cross/include" \
    --enable-default-pie \
    --enable-default-ssp \
    --disable-nls \
    --disable-multilib \
    --disable-libatomic \
    --disable-libgomp \
    --disable-libquadmath \
    --disable-libsanitizer \
    --disable-libssp \
    --disable-libvtv \
    --enable-languages=c,c++ \
    MAKEINFO=true
make
make install

# As after pass 1 (§5.3): gcc's build looks for glibc's limits.h through the book's build sysroot,
# which the store has not, so it installs a limits.h that does not chain to glibc's, and chapter 7's
# compiles miss SSIZE_MAX, PATH_MAX and MB_LEN_MAX. The full one, as the book writes it for pass 1:
cd ..
cat gcc/limitx.h gcc/glimits.h gcc/limity.h > "$(echo "$out/lib/gcc/$LFS_TGT"/*/include)/limits.h"
ln -sv gcc "$out/bin/cc"
