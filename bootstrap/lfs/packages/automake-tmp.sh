# Automake for chapter 6's make (not a book page; see autoconf-tmp.sh): aclocal and automake, perl
# scripts run with the seed's perl, finding autoconf-tmp's autoconf on PATH.
./configure --prefix="$out"
make
make install
