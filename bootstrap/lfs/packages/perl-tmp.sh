# Perl, temporary (LFS 12.3 §7.9), with chapter 6's tools.
# Store adaptation: every directory under $out (the book's /usr/lib/perl5/X.Y/…). Perl's Configure
# looks for the C library in /usr/lib and /lib, which the sandbox does not have: it is told where
# chapter 5's glibc is (the directory the native compiler links libc from), as nixpkgs does with
# -Dlocincpth/-Dloclibpth.
libc_lib=$(dirname "$(gcc -print-file-name=libc.so)")
libc_inc=$(dirname "$libc_lib")/include
v=${version%.*}  # 5.36
sh Configure -des                                         \
             -D prefix="$out"                             \
             -D vendorprefix="$out"                       \
             -D useshrplib                                \
             -D privlib="$out/lib/perl5/$v/core_perl"     \
             -D archlib="$out/lib/perl5/$v/core_perl"     \
             -D sitelib="$out/lib/perl5/$v/site_perl"     \
             -D sitearch="$out/lib/perl5/$v/site_perl"    \
             -D vendorlib="$out/lib/perl5/$v/vendor_perl" \
             -D vendorarch="$out/lib/perl5/$v/vendor_perl" \
             -D locincpth="$libc_inc"                     \
             -D loclibpth="$libc_lib"                     \
             -D glibpth="$libc_lib"                       \
             -D libpth="$libc_lib"                        \
             -D sh=/bin/sh
make
make install
