# udev (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
sed -e 's/GROUP="render"/GROUP="video"/' \
    -e 's/GROUP="sgx", //'               \
    -i rules.d/50-udev-default.rules.in

sed -i '/systemd-sysctl/s/^/#/' rules.d/99-systemd.rules.in

sed -e '/NETWORK_DIRS/s/systemd/udev/' \
    -i src/libsystemd/sd-network/network-util.h

mkdir -p build
cd       build

meson setup ..                  \
      --prefix="$out"             \
      --buildtype=release       \
      -D mode=release           \
      -D dev-kvm-mode=0660      \
      -D link-udev-shared=false \
      -D logind=false           \
      -D vconsole=false

udev_helpers=$(grep "'name' :" ../src/udev/meson.build | \
                      awk '{print $3}' | tr -d ",'" | grep -v 'udevadm')
export udev_helpers

# shellcheck disable=SC2046,SC2086 # word lists, split on purpose (the book's commands)
ninja udevadm systemd-hwdb                                           \
      $(ninja -n | grep -Eo '(src/(lib)?udev|rules.d|hwdb.d)/[^ ]*') \
      $(realpath libudev.so --relative-to .)                         \
      $udev_helpers

install -vm755 -d {/usr/lib,"$out"/etc}/udev/{hwdb.d,rules.d,network}
install -vm755 -d "$out"/{lib,share}/pkgconfig
install -vm755 udevadm                             "$out"/bin/
install -vm755 systemd-hwdb                        "$out"/bin/udev-hwdb
ln      -svfn  ../bin/udevadm                      "$out"/sbin/udevd
cp      -av    libudev.so{,*[0-9]}                 "$out"/lib/
install -vm644 ../src/libudev/libudev.h            "$out"/include/
install -vm644 src/libudev/*.pc                    "$out"/lib/pkgconfig/
install -vm644 src/udev/*.pc                       "$out"/share/pkgconfig/
install -vm644 ../src/udev/udev.conf               "$out"/etc/udev/
install -vm644 rules.d/* ../rules.d/README         "$out"/lib/udev/rules.d/
# shellcheck disable=SC2046 # a list of files
install -vm644 $(find ../rules.d/*.rules \
                      -not -name '*power-switch*') "$out"/lib/udev/rules.d/
install -vm644 hwdb.d/*  ../hwdb.d/{*.hwdb,README} "$out"/lib/udev/hwdb.d/
install -vm755 "$udev_helpers"                       "$out"/lib/udev
install -vm644 ../network/99-default.link          "$out"/lib/udev/network

tar -xvf "$(source_path ../udev-lfs-20230818.tar.xz)"
make -f udev-lfs-20230818/Makefile.lfs install

tar -xf "$(source_path systemd-man-pages-257.3.tar.xz)"                            \
    --no-same-owner --strip-components=1                              \
    -C "$out"/share/man --wildcards '*/udev*' '*/libudev*'              \
                                  '*/systemd.link.5'                  \
                                  '*/systemd-'{hwdb,udevd.service}.8

sed 's|systemd/network|udev/network|'                                 \
    "$out"/share/man/man5/systemd.link.5                                \
  > "$out"/share/man/man5/udev.link.5

sed 's/systemd\(\\\?-\)/udev\1/' "$out"/share/man/man8/systemd-hwdb.8   \
                               > "$out"/share/man/man8/udev-hwdb.8

sed 's|lib.*udevd|sbin/udevd|'                                        \
    "$out"/share/man/man8/systemd-udevd.service.8                       \
  > "$out"/share/man/man8/udevd.8

rm "$out"/share/man/man*/systemd*

unset udev_helpers

udev-hwdb update
