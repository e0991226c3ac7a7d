# GCC pass 1 (LFS 12.3 §5.3): the cross compiler for $LFS_TGT, C and C++, no libc yet.
# Store adaptation: --prefix=$out; the assembler and linker are binutils pass 1's, named by their
# store paths (in the book they share $LFS/tools); no --with-sysroot, since the C library will not
# live in a sysroot but in its own store path (the cross-toolchain package wraps this compiler).
unpack_gcc_libraries() {
    local lib s
    for lib in mpfr gmp mpc; do
        for s in $srcs; do
            case "${s##*/}" in
                ????????????????????????????????-"$lib"[-_]*) mv -v "$(unpack "$s")" "$lib" ;;
            esac
        done
    done
}
unpack_gcc_libraries
# Debian's gmp orig (6.2.1+dfsg1) has no doc/ (the GFDL manual is removed), which gmp's configure
# still lists: give it an empty one.
if [ -d gmp ] && [ ! -e gmp/doc/Makefile.in ]; then
    mkdir -p gmp/doc
    printf 'all install install-strip uninstall check installcheck clean distclean mostlyclean maintainer-clean:\n\t@:\n' \
        > gmp/doc/Makefile.in
fi

case $(uname -m) in
  x86_64)
    sed -e '/m64=/s/lib64/lib/' -i.orig gcc/config/i386/t-linux64
  ;;
esac

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
