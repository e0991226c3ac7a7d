# Gawk 5.2.1 (LFS 11.3) from Debian's repack (5.2.1: the GFDL manual's sources removed,
# doc/gawktexi.in and the texi files made from it). Store adaptations:
# - --prefix=$out.
# - No manual source: the info manual cannot be made, so doc/ is left out of the build and its man
#   pages (gawk.1, gawkbug.1, pm-gawk.1) are installed by hand; awklib's programs (grcat, pwcat,
#   the library functions) are extracted from the manual, and the tarball carries them already
#   extracted (awklib/eg, stamp-eg), which are used instead of extracting them again.
sed -i 's/extras//' Makefile.in
if [ ! -e doc/gawktexi.in ]; then
    sed -i '/^SUBDIRS =/s/ doc / /' Makefile.in
    # shellcheck disable=SC2016 # $(srcdir) is make's
    sed -i 's|^\$(srcdir)/stamp-eg: .*|$(srcdir)/stamp-eg:|' awklib/Makefile.in
fi

./configure --prefix="$out"

make

run_tests make check

make LN='ln -f' install
if [ ! -e doc/gawktexi.in ]; then
    install -vDm644 -t "$out"/share/man/man1 doc/gawk.1 doc/gawkbug.1 doc/pm-gawk.1
fi

mkdir -pv "$out"/share/doc/gawk-5.2.1
cp -v doc/{awkforai.txt,*.{eps,pdf,jpg}} "$out"/share/doc/gawk-5.2.1
