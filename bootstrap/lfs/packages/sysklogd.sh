# sysklogd's equivalent: Debian 12 carries no sysklogd (LFS 11.3 §8.x has sysklogd 1.5.1, 12.3 has
# 2.7.0), so this is the nearest package Debian has, GNU inetutils' syslogd (Debian's
# inetutils-syslogd), built from the same orig as the inetutils page with every client and server
# disabled but syslogd, and the book's /etc/syslog.conf. Differences from the book's daemon:
# - no klogd and no kernel log: inetutils' syslogd reads /dev/klog, which Linux does not have
#   (kernel messages stay in `dmesg`); the book's bootscript starts `syslogd` alone here.
# - inetutils' syslogd opens no internet socket unless started with --inet (-r): that is the book's
#   `secure_mode 2`, a sysklogd 2.x keyword inetutils' syslog.conf does not have, so it is left out.
# Store adaptations: --prefix=$out; the daemon reads the system's /etc/syslog.conf and writes its
# pid to /var/run (compiled in: --sysconfdir=/etc, --localstatedir=/var), and $out/etc/syslog.conf
# is the file the rootfs links there. Servers go to libexecdir: sbin, where the book has syslogd.
./configure --prefix="$out"         \
            --libexecdir="$out"/sbin \
            --sysconfdir=/etc       \
            --localstatedir=/var    \
            --disable-clients       \
            --disable-servers       \
            --enable-syslogd        \
            --enable-logger
make
# inetutils' test of syslogd (tests/syslogd.sh) sends it messages with inetutils' logger, so logger
# is built too; the system's logger is util-linux's, so this one is not installed.
run_tests make check
make install
rm -v "$out"/bin/logger
rm -fv "$out"/share/man/man1/logger.1
rmdir --ignore-fail-on-non-empty "$out"/bin
mkdir -p "$out"/etc
cat > "$out"/etc/syslog.conf << "SYSLOG"
# Begin /etc/syslog.conf

auth,authpriv.* -/var/log/auth.log
*.*;auth,authpriv.none -/var/log/sys.log
daemon.* -/var/log/daemon.log
kern.* -/var/log/kern.log
mail.* -/var/log/mail.log
user.* -/var/log/user.log
*.emerg *

# End /etc/syslog.conf
SYSLOG
"$out"/sbin/syslogd --version
