# Util-linux, temporary (LFS 12.3 §7.12), with chapter 6's tools.
# Store adaptation: --prefix=$out for programs and libraries; the paths the programs use at run time
# (/run, /var/lib/hwclock/adjtime) stay the system's, as in the book. A store path holds no owners
# and no setuid bits: make install is told not to chown or chmod u+s (mount, umount, wall …).
./configure --prefix="$out"       \
            --libdir="$out/lib"   \
            --runstatedir=/run    \
            --disable-chfn-chsh   \
            --disable-login       \
            --disable-nologin     \
            --disable-su          \
            --disable-setpriv     \
            --disable-runuser     \
            --disable-pylibmount  \
            --disable-static      \
            --disable-makeinstall-chown  \
            --disable-makeinstall-setuid \
            --without-python      \
            --without-systemd     \
            --without-systemdsystemunitdir \
            ADJTIME_PATH=/var/lib/hwclock/adjtime \
            --docdir="$out/share/doc/util-linux-$version"
make
make install
