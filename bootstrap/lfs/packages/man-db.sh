# Man-DB 2.11.2 (LFS 11.3, the sysvinit edition: no systemd units), from Debian's orig
# (upstream's tarball). Store adaptations:
# - --prefix=$out and the book's /etc (man_db.conf) under $out; chapter 8's gdbm, groff, less,
#   libpipeline and zlib are deps; pkgconf (a dep) finds libpipeline for configure.
# - The browser, vgrind and grap stay the book's /usr/bin paths: BLFS's programs as the system
#   will have them, not the build's (the table allows the files that name them).
export PKG_CONFIG_PATH="$pkg_libpipeline/lib/pkgconfig"
./configure --prefix="$out"                         \
            --docdir="$out"/share/doc/man-db-2.11.2 \
            --sysconfdir="$out"/etc                 \
            --disable-setuid                      \
            --enable-cache-owner=bin              \
            --with-browser=/usr/bin/lynx          \
            --with-vgrind=/usr/bin/vgrind         \
            --with-grap=/usr/bin/grap             \
            --with-systemdtmpfilesdir=            \
            --with-systemdsystemunitdir=

make

run_tests make check

make install
