# Bison, temporary (LFS 12.3 §7.8), with chapter 6's tools.
# Store adaptation: --prefix=$out. Debian's orig (3.8.2+dfsg) lacks the GFDL manual
# (doc/bison.texi, doc/bison.info, doc/figs): as Debian's own build does, a one-line bison.texi
# stands in and the manual's dependencies are dated 2000, so make never runs makeinfo; no info page
# is installed. Upstream's tarball has the manual and needs none of this.
if [ ! -e doc/bison.texi ]; then
    echo '@setfilename bison.info' > doc/bison.texi
    mkdir -p doc/figs
    touch --date="2000-01-01" doc/bison.info doc/bison.help doc/figs/example.txt \
        doc/figs/example-reduce.txt doc/figs/example-shift.txt doc/*.texi \
        build-aux/cross-options.pl src/getargs.c
fi
./configure --prefix="$out" --docdir="$out/share/doc/bison-$version"
# The newly built src/bison makes doc/bison.help newer than the info page, whose rule then runs
# $(PERL) on it: chapter 7 has no perl yet (it comes next), and no info page is installed anyway.
make PERL=true
make install
rm -rf "$out/share/info"
