# e2fsprogs (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
mkdir -v build
cd       build

../configure --prefix="$out"           \
             --sysconfdir="$out"/etc       \
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
