# Sed, temporary (LFS 12.3 §6.14), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr.
./configure --prefix="$out" --host="$LFS_TGT" --build="$(./build-aux/config.guess)"
make
make install
