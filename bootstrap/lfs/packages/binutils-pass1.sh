# Binutils pass 1 (LFS 12.3 §5.2): the cross binutils for $LFS_TGT.
# Store adaptation: --prefix=$out instead of $LFS/tools. There is no $LFS sysroot to point at
# (each package has its own prefix; the cross-toolchain package names them), so ld is built with
# sysroot support but no particular sysroot.
mkdir -v build
cd build
../configure --prefix="$out" \
             --with-sysroot \
             --target="$LFS_TGT" \
             --disable-nls \
             --enable-gprofng=no \
             --disable-werror \
             --enable-new-dtags \
             --enable-default-hash-style=gnu \
             MAKEINFO=true
make
make install
