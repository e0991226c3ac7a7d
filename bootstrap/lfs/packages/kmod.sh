# Kmod 30 (LFS 11.3) from Debian's orig, 30+20221128: a snapshot of kmod's git tree after 30,
# without generated files. Store adaptations:
# - `configure` is generated as kmod's autogen.sh does without gtk-doc (an empty gtk-doc.make),
#   with chapter 6's autoconf and automake (the stage sees chapter 6) and chapter 8's libtool and
#   pkgconf (deps) for their aclocal macros.
# - --prefix=$out; configure finds chapter 8's openssl, xz, zlib and zstd (deps) with pkgconf.
#   --sysconfdir stays the book's /etc: kmod reads /etc/modprobe.d and depmod.d at
#   run time (the system's administrator's, not a store path) and installs nothing there.
# - --disable-manpages: the release tarball the book uses carries the man pages already made;
#   the snapshot has only their XML, and LFS has no xsltproc.
# - The book runs no tests (they need kernel modules built for them).
if [ ! -e configure ]; then
    mkdir -p libkmod/docs
    touch libkmod/docs/gtk-doc.make
    export ACLOCAL_PATH="$pkg_libtool/share/aclocal:$pkg_pkgconf/share/aclocal"
    autoreconf -fi
fi

export PKG_CONFIG_PATH="$pkg_openssl/lib/pkgconfig:$pkg_xz/lib/pkgconfig:$pkg_zlib/lib/pkgconfig:$pkg_zstd/lib/pkgconfig"
./configure --prefix="$out"   \
            --sysconfdir=/etc \
            --with-openssl    \
            --with-xz         \
            --with-zstd       \
            --with-zlib       \
            --disable-manpages

make

make install

mkdir -pv "$out"/sbin
for target in depmod insmod modinfo modprobe rmmod; do
  ln -sfv ../bin/kmod "$out"/sbin/$target
done

ln -sfv kmod "$out"/bin/lsmod
