# Gawk, temporary (LFS 12.3 §6.9), cross-compiled with the cross toolchain (chapter 5's, first on PATH).
# Store adaptation: --prefix=$out instead of DESTDIR=$LFS with --prefix=/usr.
sed -i 's/extras//' Makefile.in
# Debian's gawk orig (a repack, lfs-debian.toml) lacks the GFDL manual's source, doc/gawktexi.in,
# without which neither doc/ nor awklib/ (its programs are extracted from the manual) can be built;
# the temporary system needs neither.
if [ ! -e doc/gawktexi.in ]; then sed -i '/^SUBDIRS =/s/ doc awklib / /' Makefile.in; fi
./configure --prefix="$out" --host="$LFS_TGT" --build="$(build-aux/config.guess)"
make
make install
