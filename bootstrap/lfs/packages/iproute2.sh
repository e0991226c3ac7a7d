# IPRoute2 6.1.0 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptations:
# PREFIX=$out, and its configuration directory (the book's /etc/iproute2, compiled in) under $out;
# chapter 8's libcap and libelf (deps) found by its configure through pkg-config. No arpd (it needs
# Berkeley DB), as in the book. The book runs no tests (they need root and a kernel to change).
# Its configure checks the kernel's API headers at KERNEL_INCLUDE, by default the book's
# /usr/include: chapter 8's linux-api-headers (a dep) here.
export PKG_CONFIG_PATH="$pkg_libcap/lib/pkgconfig:$pkg_libelf/lib/pkgconfig"
sed -i /ARPD/d Makefile
rm -fv man/man8/arpd.8

vars=(KERNEL_INCLUDE="$pkg_linux_api_headers/include" PREFIX="$out" SBINDIR="$out"/sbin CONFDIR="$out"/etc/iproute2 NETNS_RUN_DIR=/run/netns)
make "${vars[@]}"

make "${vars[@]}" install

mkdir -pv "$out"/share/doc/iproute2-6.1.0
cp -v COPYING README* "$out"/share/doc/iproute2-6.1.0
