# Coreutils, temporary (LFS 12.3 §6.5), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr.
./configure --prefix="$out" \
            --host="$LFS_TGT" \
            --build="$(build-aux/config.guess)" \
            --enable-install-program=hostname \
            --enable-no-install-program=kill,uptime
make
make install
mkdir -pv "$out/sbin" "$out/share/man/man8"
mv -v "$out/bin/chroot" "$out/sbin"
mv -v "$out/share/man/man1/chroot.1" "$out/share/man/man8/chroot.8"
sed -i 's/"1"/"8"/' "$out/share/man/man8/chroot.8"
