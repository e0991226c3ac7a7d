# The bootscripts' equivalent: Debian 12 carries no source of LFS-Bootscripts (LFS 11.3 §9.2), so
# these are written from the book's chapter 9 (§9.2 what the package installs, §9.5 the network
# configuration files, §9.6 "System V Bootscript Usage and Configuration": the runlevels, the rc
# driver, rc.site, /etc/sysconfig/{clock,console,createfiles,modules,udev_retry}). Shorter than
# LFS's scripts (no coloured columns, no boot log replay), the same interface: `/etc/rc.d/init.d/X
# start|stop|restart|status`, the book's rcS.d and rc0.d…rc6.d links, ifup/ifdown with
# /etc/sysconfig/ifconfig.IFACE and /lib/services/ipv4-static, and /lib/lsb/init-functions.
# They are plain POSIX sh, shellcheck-clean (`just lint` writes them to a temporary directory and
# checks them). No source and no compiler: the files go to $out/etc and $out/lib, which the rootfs
# links into /etc and /usr/lib (= /lib); /etc/inittab is the profile's ([rootfs.files]).
set -e
: "${out:?out must name the output directory}"

# write PATH MODE: the standard input becomes $out/PATH
write() {
    mkdir -p "$(dirname "$out/$1")"
    cat > "$out/$1"
    chmod "$2" "$out/$1"
}

write lib/lsb/init-functions 644 <<'EOF'
#!/bin/sh
# /lib/lsb/init-functions: messages and process helpers shared by the bootscripts (LFS §9.6).
# shellcheck source=/dev/null
[ -r /etc/sysconfig/rc.site ] && . /etc/sysconfig/rc.site
BOOTLOG=${BOOTLOG:-/run/bootlog}

log_line() {
    printf '%s\n' "$*" >> "$BOOTLOG" 2> /dev/null || true
}
log_info_msg() {
    printf '%s' "$*"
    log_line "$*"
}
log_success_msg() {
    printf ' [  OK  ]%s\n' "${1:+ $1}"
    log_line "OK${1:+ $1}"
}
log_warning_msg() {
    printf ' [ WARN ]%s\n' "${1:+ $1}"
    log_line "WARN${1:+ $1}"
}
log_failure_msg() {
    printf ' [ FAIL ]%s\n' "${1:+ $1}"
    log_line "FAIL${1:+ $1}"
}
# evaluate_retval: OK or FAIL for the status of the last command, which it returns
evaluate_retval() {
    status=$?
    if [ "$status" -eq 0 ]; then log_success_msg ""; else log_failure_msg ""; fi
    return "$status"
}
# pidofproc PROGRAM: the pids of PROGRAM's processes on standard output; 0 when it runs
pidofproc() {
    pidof "${1##*/}"
}
# start_daemon PROGRAM ARGS…: start PROGRAM unless it runs
start_daemon() {
    if pidofproc "$1" > /dev/null; then
        return 0
    fi
    "$@"
}
# killproc PROGRAM [SIGNAL]: signal PROGRAM (TERM: and wait up to KILLDELAY seconds for it to end)
killproc() {
    pids=$(pidofproc "$1") || return 0
    signal=${2:-TERM}
    # shellcheck disable=SC2086 # a list of pids
    kill -"$signal" $pids || return 1
    [ "$signal" = TERM ] || return 0
    waited=0
    while pidofproc "$1" > /dev/null && [ "$waited" -lt "${KILLDELAY:-3}" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if pidofproc "$1" > /dev/null; then
        pids=$(pidofproc "$1") || return 0
        # shellcheck disable=SC2086 # a list of pids
        kill -KILL $pids
    fi
    return 0
}
# statusproc PROGRAM: say whether PROGRAM runs
statusproc() {
    if pids=$(pidofproc "$1"); then
        echo "${1##*/} is running with process ID(s) $pids."
    else
        echo "${1##*/} is not running."
        return 3
    fi
}
EOF

write etc/sysconfig/rc.site 644 <<'EOF'
# /etc/sysconfig/rc.site: settings every bootscript reads (LFS §9.6.8)
# Seconds sendsignals and killproc wait between TERM and KILL
KILLDELAY=3
# Skip the file system check at boot (as if /fastboot existed): yes or no
FASTBOOT=no
# Clear /tmp at boot: yes or no
SKIPTMPCLEAN=no
EOF

write etc/sysconfig/clock 644 <<'EOF'
# /etc/sysconfig/clock (LFS §9.6.4): UTC=1 when the hardware clock keeps UTC, 0 for local time
UTC=1
# Options for hwclock
CLOCKPARAMS=
EOF

write etc/sysconfig/console 644 <<'EOF'
# /etc/sysconfig/console (LFS §9.6.5): the console's keymap and font, none by default
#KEYMAP="us"
#FONT="lat1-16 -m 8859-1"
#UNICODE="1"
EOF

write etc/sysconfig/createfiles 644 <<'EOF'
# /etc/sysconfig/createfiles (LFS §9.6.9): files cleanfs makes at boot
# NAME TYPE(file|dir|dev) PERMISSIONS USER GROUP [DEVTYPE MAJOR MINOR]
/run/utmp file 664 root utmp
EOF

write etc/sysconfig/modules 644 <<'EOF'
# /etc/sysconfig/modules (LFS §9.6.3): a kernel module per line, with its arguments
EOF

write etc/sysconfig/udev_retry 644 <<'EOF'
# /etc/sysconfig/udev_retry (LFS §9.3.2.3): subsystems whose events udev_retry replays once the
# file systems are mounted
rtc
EOF

write etc/sysconfig/ifconfig.eth0 644 <<'EOF'
# /etc/sysconfig/ifconfig.eth0 (LFS §9.5.1): not started until ONBOOT=yes and the addresses are set
ONBOOT=no
IFACE=eth0
SERVICE=ipv4-static
IP=192.168.1.2
GATEWAY=192.168.1.1
PREFIX=24
BROADCAST=192.168.1.255
EOF

write etc/rc.d/init.d/rc 755 <<'EOF'
#!/bin/sh
# /etc/rc.d/init.d/rc RUNLEVEL: init runs it on entering a runlevel (LFS §9.6.2). The K scripts of
# /etc/rc.d/rcRUNLEVEL.d are stopped, then its S scripts started (stopped in runlevels 0 and 6).
# shellcheck source=/dev/null
. /lib/lsb/init-functions
runlevel=$1
if [ -z "$runlevel" ]; then
    echo "Usage: $0 <runlevel>" >&2
    exit 1
fi
dir=/etc/rc.d/rc$runlevel.d
if [ ! -d "$dir" ]; then
    log_failure_msg "$dir does not exist"
    exit 1
fi
if [ "${PREVLEVEL:-N}" != N ]; then
    for script in "$dir"/K*; do
        [ -x "$script" ] || continue
        "$script" stop || log_warning_msg "$script stop failed"
    done
fi
for script in "$dir"/S*; do
    [ -x "$script" ] || continue
    case $runlevel in
        0|6) "$script" stop ;;
        *) "$script" start ;;
    esac || log_warning_msg "$script failed"
done
EOF

# service NAME: a bootscript whose standard input is the body of its `case "$1"` (start, stop …)
service() {
    {
        printf '#!/bin/sh\n'
        cat
    } | write "etc/rc.d/init.d/$1" 755
}

service mountvirtfs <<'EOF'
# mountvirtfs: mounts /run, /proc, /sys, /dev and /dev/pts (LFS §9.6, rcS.d S00)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        log_info_msg "Mounting virtual file systems: /run /proc /sys /dev"
        mountpoint -q /run || mount -t tmpfs -o mode=0755,nosuid,nodev run /run || exit 1
        mkdir -p /run/lock /run/shm
        chmod 1777 /run/shm /run/lock
        mountpoint -q /proc || mount -t proc -o nosuid,noexec,nodev proc /proc || exit 1
        mountpoint -q /sys || mount -t sysfs -o nosuid,noexec,nodev sysfs /sys || exit 1
        mountpoint -q /dev || mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev || exit 1
        mkdir -p /dev/pts
        mountpoint -q /dev/pts || mount -t devpts -o gid=5,mode=620 devpts /dev/pts
        ln -sfn /run/shm /dev/shm
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 {start}"
        exit 1
        ;;
esac
EOF

service modules <<'EOF'
# modules: loads the kernel modules /etc/sysconfig/modules names (LFS §9.6.3, rcS.d S05)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        [ -r /proc/modules ] || exit 0
        [ -r /etc/sysconfig/modules ] || exit 0
        status=0
        while read -r module args; do
            case $module in ''|'#'*) continue ;; esac
            log_info_msg "Loading module $module"
            # shellcheck disable=SC2086 # the module's arguments, as written in the file
            modprobe "$module" $args > /dev/null
            evaluate_retval || status=1
        done < /etc/sysconfig/modules
        exit "$status"
        ;;
    *)
        echo "Usage: $0 {start}"
        exit 1
        ;;
esac
EOF

service localnet <<'EOF'
# localnet: the host name (/etc/hostname) and the loopback interface (LFS §9.5.4, rcS.d S08)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
name=lfs
[ -r /etc/hostname ] && name=$(cat /etc/hostname)
case $1 in
    start)
        log_info_msg "Bringing up the loopback interface and setting the host name to $name"
        ip link set lo up && hostname "$name"
        evaluate_retval
        ;;
    stop)
        log_info_msg "Bringing down the loopback interface"
        ip link set lo down
        evaluate_retval
        ;;
    restart)
        "$0" stop
        "$0" start
        ;;
    status)
        echo "Hostname is: $(hostname)"
        ip link show lo
        ;;
    *)
        echo "Usage: $0 {start|stop|restart|status}"
        exit 1
        ;;
esac
EOF

service udev <<'EOF'
# udev: starts udevd and lets it create the devices the kernel reports (LFS §9.3, rcS.d S10)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        log_info_msg "Populating /dev with device nodes"
        if ! grep -q '[[:space:]]/sys[[:space:]]' /proc/mounts; then
            log_failure_msg "/sys is not mounted"
            exit 1
        fi
        udevd --daemon || exit 1
        udevadm trigger --action=add --type=subsystems
        udevadm trigger --action=add --type=devices
        udevadm settle
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 {start}"
        exit 1
        ;;
esac
EOF

service swap <<'EOF'
# swap: the swap spaces of /etc/fstab (LFS §9.6, rcS.d S20, rc0.d and rc6.d S65)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        log_info_msg "Activating all swap files/partitions"
        swapon -a
        evaluate_retval
        ;;
    stop)
        log_info_msg "Deactivating all swap files/partitions"
        swapoff -a
        evaluate_retval
        ;;
    restart)
        "$0" stop
        sleep 1
        "$0" start
        ;;
    status)
        swapon --show
        ;;
    *)
        echo "Usage: $0 {start|stop|restart|status}"
        exit 1
        ;;
esac
EOF

service setclock <<'EOF'
# setclock: the system clock from the hardware clock at boot, and back at shutdown (LFS §9.6.4).
# udev runs it when the rtc device appears (the book's udev rule); /etc/sysconfig/clock says UTC.
# shellcheck source=/dev/null
. /lib/lsb/init-functions
UTC=1
CLOCKPARAMS=
# shellcheck source=/dev/null
[ -r /etc/sysconfig/clock ] && . /etc/sysconfig/clock
if [ "$UTC" = 1 ]; then zone=--utc; else zone=--localtime; fi
case $1 in
    start)
        # shellcheck disable=SC2086 # hwclock's options, as written in the file
        hwclock --hctosys "$zone" $CLOCKPARAMS > /dev/null
        ;;
    stop)
        log_info_msg "Setting the hardware clock"
        # shellcheck disable=SC2086 # hwclock's options, as written in the file
        hwclock --systohc "$zone" $CLOCKPARAMS > /dev/null
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 {start|stop}"
        exit 1
        ;;
esac
EOF

service checkfs <<'EOF'
# checkfs: checks the file systems of /etc/fstab before they are mounted read-write (LFS §9.6,
# rcS.d S30). /fastboot skips it, /forcefsck forces it; fsck's status decides what follows.
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        if [ -f /fastboot ] || [ "${FASTBOOT:-no}" = yes ]; then
            log_info_msg "Skipping the file system checks (fastboot)"
            log_success_msg
            exit 0
        fi
        if ! mount -n -o remount,ro / > /dev/null 2>&1; then
            log_warning_msg "cannot remount / read-only: the checks are skipped"
            exit 0
        fi
        force=
        [ -f /forcefsck ] && force=-f
        log_info_msg "Checking file systems"
        status=0
        fsck $force -a -A -C -T || status=$?
        if [ "$status" -eq 0 ]; then
            log_success_msg
        elif [ "$status" -eq 1 ]; then
            log_warning_msg "file system errors were found and corrected"
        elif [ "$status" -le 3 ]; then
            log_warning_msg "file system errors were corrected: the system reboots"
            sleep 10
            reboot -f
        else
            log_failure_msg "file system errors need manual repair (fsck status $status)"
            sulogin || true
            reboot -f
        fi
        ;;
    *)
        echo "Usage: $0 {start}"
        exit 1
        ;;
esac
EOF

service mountfs <<'EOF'
# mountfs: / read-write and the file systems of /etc/fstab (LFS §9.6, rcS.d S40); at shutdown
# (rc0.d and rc6.d S70) they are unmounted and / made read-only.
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        log_info_msg "Remounting the root file system read-write"
        mount -o remount,rw / > /dev/null
        evaluate_retval || exit 1
        rm -f /fastboot /forcefsck
        log_info_msg "Mounting the other file systems"
        mount -a -O no_netdev > /dev/null
        evaluate_retval
        ;;
    stop)
        log_info_msg "Unmounting all other file systems"
        sync
        umount -a -d -r -t notmpfs,nosysfs,nodevtmpfs,noproc,nodevpts > /dev/null
        evaluate_retval
        log_info_msg "Remounting the root file system read-only"
        mount -o remount,ro / > /dev/null
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 {start|stop}"
        exit 1
        ;;
esac
EOF

service cleanfs <<'EOF'
# cleanfs: empties /tmp and makes the files /etc/sysconfig/createfiles lists (LFS §9.6.9, rcS.d S45)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        if [ "${SKIPTMPCLEAN:-no}" != yes ]; then
            log_info_msg "Cleaning /tmp"
            find /tmp -xdev -mindepth 1 -delete 2> /dev/null
            evaluate_retval
        fi
        [ -r /etc/sysconfig/createfiles ] || exit 0
        log_info_msg "Creating files and directories"
        status=0
        while read -r name type perm user group devtype major minor; do
            case $name in ''|'#'*) continue ;; esac
            case $type in
                file) : > "$name" ;;
                dir) mkdir -p "$name" ;;
                dev) mknod "$name" "$devtype" "$major" "$minor" ;;
                *) status=1; continue ;;
            esac || status=1
            chown "$user:$group" "$name" && chmod "$perm" "$name" || status=1
        done < /etc/sysconfig/createfiles
        [ "$status" -eq 0 ]
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 {start}"
        exit 1
        ;;
esac
EOF

service udev_retry <<'EOF'
# udev_retry: replays the device events that failed before the file systems were mounted, and those
# of the subsystems /etc/sysconfig/udev_retry lists (LFS §9.3.2.3, rcS.d S50)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        log_info_msg "Retrying failed uevents, if any"
        udevadm trigger --type=failed --action=add
        if [ -r /etc/sysconfig/udev_retry ]; then
            while read -r subsystem; do
                case $subsystem in ''|'#'*) continue ;; esac
                udevadm trigger --subsystem-match="$subsystem" --action=add
            done < /etc/sysconfig/udev_retry
        fi
        udevadm settle
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 {start}"
        exit 1
        ;;
esac
EOF

service console <<'EOF'
# console: the keymap and font /etc/sysconfig/console names (LFS §9.6.5, rcS.d S70)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
KEYMAP=
FONT=
UNICODE=
# shellcheck source=/dev/null
[ -r /etc/sysconfig/console ] && . /etc/sysconfig/console
case $1 in
    start)
        [ -n "$KEYMAP$FONT$UNICODE" ] || exit 0
        log_info_msg "Setting up the Linux console"
        status=0
        if [ "$UNICODE" = 1 ]; then
            kbd_mode -u || status=1
            printf '\033%%G' > /dev/console
        fi
        # shellcheck disable=SC2086 # setfont's and loadkeys' arguments, as written in the file
        if [ -n "$FONT" ]; then setfont $FONT || status=1; fi
        # shellcheck disable=SC2086
        if [ -n "$KEYMAP" ]; then loadkeys $KEYMAP > /dev/null || status=1; fi
        [ "$status" -eq 0 ]
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 {start}"
        exit 1
        ;;
esac
EOF

service sysctl <<'EOF'
# sysctl: the kernel parameters of /etc/sysctl.conf (LFS §9.6, rcS.d S90)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        [ -f /etc/sysctl.conf ] || exit 0
        log_info_msg "Setting kernel runtime parameters"
        sysctl -q -p
        evaluate_retval
        ;;
    status)
        sysctl -a
        ;;
    *)
        echo "Usage: $0 {start|status}"
        exit 1
        ;;
esac
EOF

service sysklogd <<'EOF'
# sysklogd: the system log daemon (LFS §8.x and §9.6; rc3.d-rc5.d S10, K90 elsewhere). Here it is
# inetutils' syslogd (the sysklogd package's note says why): no klogd; -m 0 turns off the marks.
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    start)
        log_info_msg "Starting the system log daemon"
        start_daemon syslogd -m 0
        evaluate_retval
        ;;
    stop)
        log_info_msg "Stopping the system log daemon"
        killproc syslogd
        evaluate_retval
        ;;
    reload)
        log_info_msg "Reloading the system log daemon's configuration"
        killproc syslogd HUP
        evaluate_retval
        ;;
    restart)
        "$0" stop
        sleep 1
        "$0" start
        ;;
    status)
        statusproc syslogd
        ;;
    *)
        echo "Usage: $0 {start|stop|reload|restart|status}"
        exit 1
        ;;
esac
EOF

service network <<'EOF'
# network: the interfaces of /etc/sysconfig/ifconfig.* with ONBOOT=yes (LFS §9.5; rc3.d-rc5.d S20,
# K80 elsewhere), through ifup and ifdown
# shellcheck source=/dev/null
. /lib/lsb/init-functions
interfaces() {
    for file in /etc/sysconfig/ifconfig.*; do
        [ -f "$file" ] || continue
        grep -q '^ONBOOT=["]*yes' "$file" || continue
        echo "${file##*/ifconfig.}"
    done
}
case $1 in
    start)
        for interface in $(interfaces); do
            ifup "$interface"
        done
        ;;
    stop)
        for interface in $(interfaces); do
            ifdown "$interface"
        done
        ;;
    restart)
        "$0" stop
        sleep 1
        "$0" start
        ;;
    *)
        echo "Usage: $0 {start|stop|restart}"
        exit 1
        ;;
esac
EOF

service sendsignals <<'EOF'
# sendsignals: ends every process left at shutdown, TERM then KILL (LFS §9.6, rc0.d and rc6.d S60)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    stop)
        log_info_msg "Sending all processes the TERM signal"
        killall5 -15
        status=$?
        sleep "${KILLDELAY:-3}"
        [ "$status" -eq 0 ] || [ "$status" -eq 2 ]
        evaluate_retval
        log_info_msg "Sending all processes the KILL signal"
        killall5 -9
        status=$?
        sleep "${KILLDELAY:-3}"
        [ "$status" -eq 0 ] || [ "$status" -eq 2 ]
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 {stop}"
        exit 1
        ;;
esac
EOF

service reboot <<'EOF'
# reboot: the last script of runlevel 6 (LFS §9.6, rc6.d S99)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    stop)
        log_info_msg "Restarting the system"
        reboot -d -f -i
        ;;
    *)
        echo "Usage: $0 {stop}"
        exit 1
        ;;
esac
EOF

service halt <<'EOF'
# halt: the last script of runlevel 0 (LFS §9.6, rc0.d S99)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case $1 in
    stop)
        halt -d -f -i -p
        ;;
    *)
        echo "Usage: $0 {stop}"
        exit 1
        ;;
esac
EOF

write sbin/ifup 755 <<'EOF'
#!/bin/sh
# ifup IFACE / ifdown IFACE (a link to this script): brings up or takes down the interface
# /etc/sysconfig/ifconfig.IFACE describes, through the service script it names
# (/lib/services/SERVICE IFACE up|down) (LFS §9.5.1)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
case ${0##*/} in ifdown) action=down ;; *) action=up ;; esac
[ -n "$1" ] || { echo "Usage: $0 <interface>" >&2; exit 1; }
file=/etc/sysconfig/ifconfig.$1
[ -r "$file" ] || { log_failure_msg "$file does not exist"; exit 1; }
IFACE=
SERVICE=
# shellcheck source=/dev/null
. "$file"
if [ -z "$IFACE" ] || [ -z "$SERVICE" ]; then
    log_failure_msg "$file sets no IFACE or SERVICE"
    exit 1
fi
[ -x "/lib/services/$SERVICE" ] || { log_failure_msg "no service $SERVICE"; exit 1; }
export IFCONFIG="$file"
"/lib/services/$SERVICE" "$IFACE" "$action"
EOF
ln -s ifup "$out/sbin/ifdown"

write lib/services/ipv4-static 755 <<'EOF'
#!/bin/sh
# /lib/services/ipv4-static IFACE up|down: a static IPv4 address, and the default route when
# GATEWAY is set, from the file ifup names in IFCONFIG (LFS §9.5.1)
# shellcheck source=/dev/null
. /lib/lsb/init-functions
IP=
PREFIX=24
BROADCAST=+
GATEWAY=
# shellcheck source=/dev/null
. "${IFCONFIG:?ifup sets IFCONFIG}"
iface=$1
[ -n "$IP" ] || { log_failure_msg "$IFCONFIG sets no IP"; exit 1; }
case $2 in
    up)
        log_info_msg "Adding IPv4 address $IP/$PREFIX to $iface"
        ip link set "$iface" up && ip addr add "$IP/$PREFIX" broadcast "$BROADCAST" dev "$iface"
        evaluate_retval || exit 1
        if [ -n "$GATEWAY" ]; then
            log_info_msg "Adding the default route via $GATEWAY"
            ip route add default via "$GATEWAY" dev "$iface"
            evaluate_retval
        fi
        ;;
    down)
        log_info_msg "Removing IPv4 address $IP/$PREFIX from $iface"
        ip addr del "$IP/$PREFIX" dev "$iface"
        ip link set "$iface" down
        evaluate_retval
        ;;
    *)
        echo "Usage: $0 <interface> {up|down}"
        exit 1
        ;;
esac
EOF

# The book's runlevel links (LFS §9.6.2): rcS.d at boot, then the runlevel's K and S scripts.
link() {
    mkdir -p "$out/etc/rc.d/$1"
    ln -s "../init.d/$2" "$out/etc/rc.d/$1/$3"
}
for entry in S00:mountvirtfs S05:modules S08:localnet S10:udev S20:swap S30:checkfs S40:mountfs \
             S45:cleanfs S50:udev_retry S70:console S90:sysctl; do
    link rcS.d "${entry#*:}" "${entry%%:*}${entry#*:}"
done
for level in 0 6; do
    link "rc$level.d" network K80network
    link "rc$level.d" sysklogd K90sysklogd
    link "rc$level.d" sendsignals S60sendsignals
    link "rc$level.d" swap S65swap
    link "rc$level.d" mountfs S70mountfs
    link "rc$level.d" localnet S80localnet
done
link rc0.d halt S99halt
link rc6.d reboot S99reboot
for level in 1 2; do
    link "rc$level.d" network K80network
    link "rc$level.d" sysklogd K90sysklogd
done
for level in 3 4 5; do
    link "rc$level.d" sysklogd S10sysklogd
    link "rc$level.d" network S20network
done
# setclock is run by udev (the rtc rule) at boot and by the shutdown runlevels
link rc0.d setclock S50setclock
link rc6.d setclock S50setclock
for f in "$out"/etc/rc.d/init.d/* "$out"/sbin/* "$out"/lib/services/* "$out"/lib/lsb/init-functions; do
    sh -n "$f"
done
