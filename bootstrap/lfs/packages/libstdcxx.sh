# Libstdc++ from GCC (LFS 12.3 §5.6), cross-compiled for $LFS_TGT.
# Store adaptation: --prefix=$out, headers in $out/include/c++/$version. The book's compiler finds
# glibc in $LFS; here a private wrapper (the builder's wrap_cc) names glibc's store path.
wrap_cc "$NIX_BUILD_TOP/cross/bin" "$LFS_TGT" "$pkg_gcc_pass1" "$pkg_glibc_cross" "$pkg_linux_headers"
export PATH="$NIX_BUILD_TOP/cross/bin:$PATH"

mkdir -v build
cd build
../libstdc++-v3/configure \
    --host="$LFS_TGT" \
    --build="$(../config.guess)" \
    --prefix="$out" \
    --disable-multilib \
    --disable-nls \
    --disable-libstdcxx-pch \
    --with-gxx-include-dir="$out/include/c++/$version"
make
make install
