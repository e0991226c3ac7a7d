# Util-linux 2.38.1 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptations:
# - --prefix=$out for programs and libraries; the paths the programs use at run time (/run,
#   /var/lib/hwclock/adjtime) stay the system's, as in the book. Chapter 8's ncurses, readline,
#   libcap and zlib are deps.
# - A store path holds no owners and no setuid or setgid bits: make install is told not to chown
#   or chmod (mount and umount setuid root, wall and write setgid tty); the table's [rootfs.modes]
#   lines give them their modes in the exported system.
# - The book runs the tests as the unprivileged `tester` (su tester -c "make -k check"); the
#   sandbox's builder is unprivileged already, with no other user to switch to.
./configure --prefix="$out"       \
            --bindir="$out/bin"   \
            --libdir="$out/lib"   \
            --sbindir="$out/sbin" \
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
run_tests make -k check
make install
