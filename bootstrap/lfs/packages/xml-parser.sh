# XML::Parser 2.46 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptations:
# PREFIX=$out: the module goes to $out/lib/perl5/5.36/site_perl (perl's site directory, moved
# under $out), where chapter 8's perl does not look by itself: a package that uses it names it
# (intltool.sh). Chapter 8's expat (a dep) by path, as Makefile.PL asks.
perl Makefile.PL PREFIX="$out" EXPATLIBPATH="$pkg_expat"/lib EXPATINCPATH="$pkg_expat"/include

make

run_tests make test

make install
# perllocal.pod records the install with its date (ExtUtils::MakeMaker's "installed into" entry): no
# two builds would write the same bytes, and the book's system has one such file per perl, not per
# module (nixpkgs' perl builds remove it too)
find "$out" -name perllocal.pod -delete
