# E2fsprogs 1.47.0 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptations:
# - --prefix=$out and the book's /etc (mke2fs.conf) under $out; chapter 8's util-linux (a dep) for
#   libblkid and libuuid (--disable-libblkid, --disable-libuuid, as in the book).
# - metadata_csum_seed is dropped from mke2fs.conf's ext4 defaults (the book's later pages offer
#   this edit): GRUB 2.06 reads such a file system only with upstream's ext2.c fixes, which LFS
#   11.3 applies (grub-2.06-upstream_fixes-1.patch, the book's own) and grub.sh cannot.
# - configure finds util-linux's blkid and uuid through pkg-config (pkgconf, a dep).
export PKG_CONFIG_PATH="$pkg_util_linux/lib/pkgconfig"
mkdir -v build
cd       build

# the programs link libext2fs, libcom_err, libe2p and libss from $out/lib (--enable-elf-shlibs:
# no libtool, no rpath of its own): LDFLAGS gives them one
../configure --prefix="$out"           \
             LDFLAGS="-Wl,-rpath,$out/lib" \
             --sysconfdir="$out"/etc   \
             --enable-elf-shlibs     \
             --disable-libblkid      \
             --disable-libuuid       \
             --disable-uuidd         \
             --disable-fsck

make

run_tests make check

make install

rm -fv "$out"/lib/{libcom_err,libe2p,libext2fs,libss}.a

gunzip -v "$out"/share/info/libext2fs.info.gz
install-info --dir-file="$out"/share/info/dir "$out"/share/info/libext2fs.info

makeinfo -o      doc/com_err.info ../lib/et/com_err.texinfo
install -v -m644 doc/com_err.info "$out"/share/info
install-info --dir-file="$out"/share/info/dir "$out"/share/info/com_err.info

sed 's/metadata_csum_seed,//' -i "$out"/etc/mke2fs.conf
