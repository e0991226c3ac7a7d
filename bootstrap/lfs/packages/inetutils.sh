# Inetutils 2.4 (LFS 11.3 §8.39), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out, the book's /var under $out; ftp and telnet link chapter 8's readline and ncurses
# (deps). ifconfig goes to sbin, as the book moves it.
./configure --prefix="$out"            \
            --bindir="$out"/bin        \
            --localstatedir="$out"/var \
            --disable-logger           \
            --disable-whois            \
            --disable-rcp              \
            --disable-rexec            \
            --disable-rlogin           \
            --disable-rsh              \
            --disable-servers
make
run_tests make check
make install
mkdir -p "$out"/sbin
mv -v "$out"/bin/ifconfig "$out"/sbin/ifconfig
