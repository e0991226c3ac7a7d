# Bison 3.8.2 (LFS 11.3 §8.32) from Debian's repack (3.8.2+dfsg: the GFDL manual removed). As for
# chapter 7's bison (bison-tmp.sh), Debian's own build puts a one-line bison.texi in its place and
# dates the manual's inputs back, so make never runs makeinfo; no info page is installed. Store
# adaptation: --prefix=$out; chapter 8's m4 (its dep) is the one bison records. The test suite
# (about 5.5 SBU) is run when the package says check = true.
if [ ! -e doc/bison.texi ]; then
    echo '@setfilename bison.info' > doc/bison.texi
    mkdir -p doc/figs
    touch --date="2000-01-01" doc/bison.info doc/bison.help doc/figs/example.txt \
        doc/figs/example-reduce.txt doc/figs/example-shift.txt doc/*.texi \
        build-aux/cross-options.pl src/getargs.c
fi
./configure --prefix="$out" --docdir="$out"/share/doc/bison-3.8.2
make PERL=true
run_tests make check
make install
rm -rf "$out"/share/info
