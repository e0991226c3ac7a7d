# GCC pass 1 (LFS 12.3 §5.3): the cross compiler for $LFS_TGT, C and C++, no libc yet.
# Store adaptation: --prefix=$out; the assembler and linker are binutils pass 1's, named by their
# store paths (in the book they share $LFS/tools); no --with-sysroot, since the C library will not
# live in a sysroot but in its own store path (the cross-toolchain package wraps this compiler).
# mpfr, gmp and mpc are built inside gcc's tree; 64-bit libraries go to lib (builder helpers).
gcc_unpack_libraries
gcc_lib64_to_lib

mkdir -v build
cd build
../configure \
    --target="$LFS_TGT" \
    --prefix="$out" \
    --with-glibc-version="$GLIBC_VERSION" \
    --with-as="$pkg_binutils_pass1/bin/$LFS_TGT-as" \
    --with-ld="$pkg_binutils_pass1/bin/$LFS_TGT-ld" \
    --with-newlib \
    --without-headers \
    --enable-default-pie \
    --enable-default-ssp \
    --disable-nls \
    --disable-shared \
    --disable-multilib \
    --disable-threads \
    --disable-libatomic \
    --disable-libgomp \
    --disable-libquadmath \
    --disable-libssp \
    --disable-libvtv \
    --disable-libstdcxx \
    --enable-languages=c,c++ \
    MAKEINFO=true
make
make install

cd ..
cat gcc/limitx.h gcc/glimits.h gcc/limity.h > \
  "$(dirname "$("$out/bin/$LFS_TGT-gcc" -print-libgcc-file-name)")/include/limits.h"
