# Perl 5.36.0 (LFS 11.3 §8.41), from Debian's orig (upstream's tarball). Store adaptations:
# - every directory under $out (the book's /usr/lib/perl5/5.36/…).
# - the book's BUILD_ZLIB=False and BUILD_BZIP2=0 (use the system's zlib and bzip2): chapter 8's
#   zlib and bzip2 (deps), named to Compress-Raw-Zlib and Compress-Raw-Bzip2 by path.
# - Configure looks for libraries (libc, gdbm, zlib …) in /usr/lib and /lib, which the sandbox does
#   not have: it is told the system's glibc (where the compiler links libc from) and the deps'
#   lib and include directories, as for chapter 7's perl (perl-tmp.sh).
# - the pager is chapter 8's less by store path (the book's /usr/bin/less).
# - the test suite (about 11 SBU with the build) runs when the package says check = true.
libc_lib=$(dirname "$(gcc -print-file-name=libc.so)")
libc_inc=$(dirname "$libc_lib")/include
libpth="$libc_lib $pkg_gdbm/lib $pkg_zlib/lib $pkg_bzip2/lib"
incpth="$libc_inc $pkg_gdbm/include $pkg_zlib/include $pkg_bzip2/include"
export BUILD_ZLIB=False ZLIB_INCLUDE="$pkg_zlib"/include ZLIB_LIB="$pkg_zlib"/lib
export BUILD_BZIP2=0 BZIP2_INCLUDE="$pkg_bzip2"/include BZIP2_LIB="$pkg_bzip2"/lib
v=${version%.*}  # 5.36
sh Configure -des                                          \
             -D prefix="$out"                                \
             -D vendorprefix="$out"                          \
             -D privlib="$out/lib/perl5/$v/core_perl"      \
             -D archlib="$out/lib/perl5/$v/core_perl"      \
             -D sitelib="$out/lib/perl5/$v/site_perl"      \
             -D sitearch="$out/lib/perl5/$v/site_perl"     \
             -D vendorlib="$out/lib/perl5/$v/vendor_perl"  \
             -D vendorarch="$out/lib/perl5/$v/vendor_perl" \
             -D man1dir="$out"/share/man/man1                \
             -D man3dir="$out"/share/man/man3                \
             -D pager="$pkg_less/bin/less -isR"            \
             -D useshrplib                                 \
             -D usethreads                                 \
             -D locincpth="$incpth"                        \
             -D loclibpth="$libpth"                        \
             -D glibpth="$libpth"                          \
             -D libpth="$libpth"                           \
             -D sh=/bin/sh
make
run_tests make test
make install
unset BUILD_ZLIB BUILD_BZIP2 ZLIB_INCLUDE ZLIB_LIB BZIP2_INCLUDE BZIP2_LIB
