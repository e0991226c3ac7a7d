# Glibc (LFS 12.3 §5.5), cross-compiled with gcc pass 1.
# Store adaptation: --prefix=$out, so the dynamic loader is $out/lib/ld-linux-x86-64.so.2 and
# programs linked against this glibc name it (readelf -l shows the store's loader, not /lib64's);
# no /lib64 symlinks, and ldd's RTLDLIST is already right. The FHS patch is applied by the
# builder (patches = [...]). The book's sanity check is the cross-toolchain package's and verify's.
# GLIBC_CONFIGURE_FLAGS and GLIBC_MAKE_FLAGS (profile env) are lists of words
read -ra configure_flags <<< "${GLIBC_CONFIGURE_FLAGS:-}"
read -ra make_flags <<< "${GLIBC_MAKE_FLAGS:-}"
mkdir -v build
cd build
echo "rootsbindir=$out/sbin" > configparms
../configure \
      --prefix="$out" \
      --host="$LFS_TGT" \
      --build="$(../scripts/config.guess)" \
      --enable-kernel="${GLIBC_KERNEL:-5.4}" \
      --with-headers="$pkg_linux_headers/include" \
      --disable-nscd \
      libc_cv_slibdir="$out/lib" \
      "${configure_flags[@]}"
make "${make_flags[@]}"
make "${make_flags[@]}" install
