# GCC pass 2 (LFS 12.3 §6.18), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr.
# The book's --with-build-sysroot=$LFS becomes the store paths of chapter 5's glibc and kernel
# headers: the native header dir is glibc's, and the target libraries link against that glibc.
for lib in mpfr gmp mpc; do
    for s in $srcs; do
        case "${s##*/}" in
            ????????????????????????????????-"$lib"[-_]*) mv -v "$(unpack "$s")" "$lib" ;;
        esac
    done
done
if [ -d gmp ] && [ ! -e gmp/doc/Makefile.in ]; then  # Debian's gmp orig lacks doc/ (see gcc-pass1.sh)
    mkdir -p gmp/doc
    printf 'all install install-strip uninstall check installcheck clean distclean mostlyclean maintainer-clean:\n\t@:\n' \
        > gmp/doc/Makefile.in
fi
case $(uname -m) in
  x86_64)
    sed -e '/m64=/s/lib64/lib/' -i.orig gcc/config/i386/t-linux64
  ;;
esac
sed '/thread_header =/s/@.*@/gthr-posix.h/' -i libgcc/Makefile.in libstdc++-v3/include/Makefile.in

# The cross-toolchain's $LFS_TGT-g++ adds chapter 5's libstdc++ headers (gcc's own C++ code needs
# them), but libstdc++ itself is compiled with -nostdinc++ against its new headers: there, chapter
# 5's <fenv.h> wrapper would answer the new one's #include_next (its guard already defined, so glibc's
# fenv_t never arrives). In front of it, a wrapper sends -nostdinc++ compiles to the same compiler
# wrapped without a C++ library.
wrap_cc "$NIX_BUILD_TOP/nocxx/bin" "$LFS_TGT" "$pkg_gcc_pass1" "$pkg_glibc_cross" "$pkg_linux_headers"
mkdir -p "$NIX_BUILD_TOP/pass2/bin"
for name in g++ c++; do
    cat > "$NIX_BUILD_TOP/pass2/bin/$LFS_TGT-$name" <<WRAPPER
#!$SHELL
for a in "\$@"; do
    if [ "\$a" = -nostdinc++ ]; then exec $NIX_BUILD_TOP/nocxx/bin/$LFS_TGT-$name "\$@"; fi
done
exec $pkg_cross_toolchain/bin/$LFS_TGT-$name "\$@"
WRAPPER
    chmod +x "$NIX_BUILD_TOP/pass2/bin/$LFS_TGT-$name"
done
export PATH="$NIX_BUILD_TOP/pass2/bin:$PATH"

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
ln -sv gcc "$out/bin/cc"
