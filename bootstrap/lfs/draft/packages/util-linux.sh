# Util-linux (LFS 12.3 §8.80), adapted to the store: --prefix=$out for programs and libraries, while
# the paths the programs use at run time (/run, /var/lib/hwclock/adjtime) stay the system's. A store
# path holds no owners and no setuid bits: make install is told not to chown or chmod u+s, and the
# profile's [rootfs.modes] gives mount, umount, wall … their modes in the exported system.
# Not yet built by storekit (see bootstrap/lfs/draft/).
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
            --disable-liblastlog2 \
            --disable-static      \
            --disable-makeinstall-chown  \
            --disable-makeinstall-setuid \
            --without-python      \
            --without-systemd     \
            --without-systemdsystemunitdir \
            ADJTIME_PATH=/var/lib/hwclock/adjtime \
            --docdir="$out/share/doc/util-linux-$version"
make
# The book runs the suite as the unprivileged `tester` (su tester -c "make -k check"); the sandbox
# already runs builds as an unprivileged user with no other users to switch to, so it runs directly.
run_tests bash tests/run.sh --srcdir="$PWD" --builddir="$PWD"
make install
