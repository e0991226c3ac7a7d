# SysVinit 3.08 (the book's sysvinit edition: LFS 11.3 §8.80 has 3.06, LFS 12.1 has 3.08), from the
# orig tarball Ubuntu's archive carries (the Debian 12 orig, 3.06, is not on the archive this
# machine reaches; see the profile's table). The book applies its consolidated patch, which keeps
# sysvinit from installing the programs other chapter 8 packages own; here the same is done through
# the Makefile's own variables: util-linux installs last, lastb, mesg, utmpdump, wall, sulogin and
# mountpoint, procps pidof, e2fsprogs logsave; readbootlog (new in 3.08) reads bootlogd's log and
# stays. What is left is the book's list: bootlogd, fstab-decode, halt, init, killall5, poweroff,
# reboot, runlevel, shutdown and telinit, and their man pages.
# Store adaptations: the Makefile installs under $(ROOT)/sbin, /usr/bin, /usr/include and
# /usr/share/man; with ROOT=$out the /usr/ part goes (bin, include, share/man as every package has
# them). A sandbox's uid may be 0, where the Makefile would install with -o root -g root: its
# install commands are given without. The daemon's paths (/etc/inittab, /sbin/sulogin, /run/initctl …) are the system's, compiled
# in, as the book's. Not installing as root, the Makefile does not chown; the /run/initctl FIFO is
# made only when ROOT is empty, so not here (init makes it at boot).
# shellcheck disable=SC2016 # $(ROOT) is make's, in the Makefile
sed -i 's|$(ROOT)/usr/|$(ROOT)/|g' src/Makefile
# shellcheck disable=SC2016 # the same
sed -i -e '/ln -sf ..\/sbin\/killall5 $(ROOT)\/bin\/pidof/d' \
       -e '/if \[ ! -f $(ROOT)\/bin\/lastb \]; then/,/fi$/d' src/Makefile
grep -q 'bin/pidof\|bin/lastb' src/Makefile && die "src/Makefile still installs pidof or lastb"
vars=(DISTRO=LFS
      SBIN="init halt shutdown runlevel killall5 fstab-decode bootlogd"
      USRBIN="readbootlog"
      MAN1="readbootlog.1"
      MAN5="initscript.5 inittab.5 initctl.5"
      MAN8="halt.8 init.8 killall5.8 poweroff.8 reboot.8 runlevel.8 shutdown.8 telinit.8 fstab-decode.8 bootlogd.8"
      MANDIR=/share/man INSTALL_EXEC="install -m 755" INSTALL_DATA="install -m 644")
make "${vars[@]}"
make "${vars[@]}" ROOT="$out" install
for p in bootlogd fstab-decode halt init killall5 poweroff reboot runlevel shutdown telinit; do
    [ -e "$out/sbin/$p" ] || die "sysvinit did not install $p"
done
for p in last lastb mesg utmpdump wall sulogin mountpoint pidof logsave; do
    if [ -e "$out/bin/$p" ] || [ -e "$out/sbin/$p" ]; then die "sysvinit installed $p, which another package owns"; fi
done
"$out"/sbin/fstab-decode echo 'a\040b' | grep -qx 'a b' || die "fstab-decode does not decode \\040"
