# Udev from systemd 252 (LFS 11.3 §8.73, systemd 252 as Debian 12's 252.39), from Debian's orig
# (upstream's stable tarball). The book builds udev's parts only (udevadm, udevd, libudev, the
# helpers, the rules and hwdb) with meson and ninja, and installs them by hand. Store adaptations:
# - --prefix=$out for the programs and libudev. systemd's root prefix, where udevd looks for its
#   rules and helpers, must hold the prefix: it is / (-Dsplit-usr=true, said outright rather than
#   guessed from the sandbox's /bin), so udevd reads /lib/udev, the system's link to /usr/lib/udev,
#   where the system's tree links $out/lib/udev. /etc/udev stays the system's (udev.conf and
#   hwdb.bin go to $out/etc/udev for the tree to link). -Dsplit-bin=true: /usr/sbin is a directory
#   of its own, as in the book.
# - systemd's build runs its helpers (tools/*.py, src/basic/*.sh …) by their `#!/usr/bin/env python3`
#   or `bash`; the sandbox has no /usr/bin/env, so they name chapter 8's python and the bash on PATH. jinja2 and MarkupSafe (deps) are
#   on PYTHONPATH for meson's configure, which imports them; the deps' .pc files on PKG_CONFIG_PATH
#   (libcap, libmount and libblkid from util-linux, zstd).
# - Not installed, not being among Debian's sources: LFS's own udev-lfs-20171102 tarball (its
#   rules for persistent network and CD names, which the book's later chapters describe as
#   optional) and the prebuilt systemd-man-pages-252 tarball (man pages need xsltproc and DocBook,
#   which the book does not have).
# - The book's `udev-hwdb update` writes /etc/udev/hwdb.bin: here the database is compiled into a
#   scratch root and installed as $out/etc/udev/hwdb.bin.
export PYTHONPATH="$pkg_jinja2/lib/python3.11/site-packages:$pkg_markupsafe/lib/python3.11/site-packages"
export PKG_CONFIG_PATH="$pkg_libcap/lib/pkgconfig:$pkg_util_linux/lib/pkgconfig:$pkg_zstd/lib/pkgconfig:$pkg_acl/lib/pkgconfig"
python=$(command -v python3)
case $python in "$pkg_python"/*) ;; *) die "python3 on PATH is $python, not $pkg_python's" ;; esac
for interp in python3 python bash sh perl; do
    case $interp in python*) path=$python ;; *) path=$(command -v "$interp") || continue ;; esac
    grep -rlZ "^#! */usr/bin/env $interp\( .*\)\?\$" . 2>/dev/null \
        | xargs -0 -r sed -i "1s|^#! */usr/bin/env $interp\( .*\)\?\$|#!$path|"
done

sed -i -e 's/GROUP="render"/GROUP="video"/' \
       -e 's/GROUP="sgx", //' rules.d/50-udev-default.rules.in
sed '/systemd-sysctl/s/^/#/' -i rules.d/99-systemd.rules.in

mkdir -p build
cd       build

meson setup --prefix="$out"           \
            --buildtype=release       \
            -Dmode=release            \
            -Ddev-kvm-mode=0660       \
            -Dlink-udev-shared=false  \
            -Dsplit-usr=true          \
            -Dsplit-bin=true          \
            ..

# shellcheck disable=SC2046 # word lists, split on purpose (the book's command)
ninja udevadm systemd-hwdb                                            \
      $(grep -o -E "^build (src/libudev|src/udev|rules.d|hwdb.d)[^:]*" \
        build.ninja | awk '{ print $2 }')                             \
      $(realpath libudev.so --relative-to .)

rm rules.d/90-vconsole.rules
install -vm755 -d "$out"/{lib,etc}/udev/{hwdb,rules}.d "$out"/{bin,sbin,include}
install -vm755 -d "$out"/{lib,share}/pkgconfig
install -vm755 udevadm                     "$out"/bin/
install -vm755 systemd-hwdb                "$out"/bin/udev-hwdb
ln      -svfn  ../bin/udevadm              "$out"/sbin/udevd
cp      -av    libudev.so{,*[0-9]}         "$out"/lib/
install -vm644 ../src/libudev/libudev.h    "$out"/include/
install -vm644 src/libudev/*.pc            "$out"/lib/pkgconfig/
install -vm644 src/udev/*.pc               "$out"/share/pkgconfig/
install -vm644 ../src/udev/udev.conf       "$out"/etc/udev/
install -vm644 rules.d/* ../rules.d/{*.rules,README} "$out"/lib/udev/rules.d/
install -vm644 hwdb.d/*  ../hwdb.d/{*.hwdb,README}   "$out"/lib/udev/hwdb.d/
# shellcheck disable=SC2046 # a list of files
install -vm755 $(find src/udev -type f | grep -F -v ".") "$out"/lib/udev

# it reads /lib/udev/hwdb.d (the root prefix's, compiled in), under --root
root="$NIX_BUILD_TOP"/hwdb-root
mkdir -p "$root"/lib/udev
cp -r "$out"/lib/udev/hwdb.d "$root"/lib/udev/
"$out"/bin/udev-hwdb update --root "$root"
[ -s "$root"/etc/udev/hwdb.bin ] || die "udev-hwdb update wrote no $root/etc/udev/hwdb.bin"
install -vm644 "$root"/etc/udev/hwdb.bin "$out"/etc/udev/hwdb.bin
"$out"/bin/udevadm --version
