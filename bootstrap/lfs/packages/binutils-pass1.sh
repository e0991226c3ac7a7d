# Binutils pass 1 (LFS 12.3 §5.2): the cross binutils for $LFS_TGT.
# Store adaptation: --prefix=$out instead of $LFS/tools. There is no $LFS sysroot to point at
# (each package has its own prefix; the cross-toolchain package names them), so ld is built with
# sysroot support but no particular sysroot. Not the book's: --enable-deterministic-archives makes
# ar and ranlib write zero timestamps, uids and modes into archive members (as Debian's binutils
# does), so the static libraries this and every later binutils make rebuild bit for bit.
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
             --enable-deterministic-archives \
             MAKEINFO=true
make
make install
