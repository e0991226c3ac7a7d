# perl (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
export BUILD_ZLIB=False
export BUILD_BZIP2=0

sh Configure -des                                          \
             -D prefix="$out"                                \
             -D vendorprefix="$out"                          \
             -D privlib="$out"/lib/perl5/5.40/core_perl      \
             -D archlib="$out"/lib/perl5/5.40/core_perl      \
             -D sitelib="$out"/lib/perl5/5.40/site_perl      \
             -D sitearch="$out"/lib/perl5/5.40/site_perl     \
             -D vendorlib="$out"/lib/perl5/5.40/vendor_perl  \
             -D vendorarch="$out"/lib/perl5/5.40/vendor_perl \
             -D man1dir="$out"/share/man/man1                \
             -D man3dir="$out"/share/man/man3                \
             -D pager="$out/bin/less -isR"                 \
             -D useshrplib                                 \
             -D usethreads

make

TEST_JOBS=$(nproc) make test_harness

make install
unset BUILD_ZLIB BUILD_BZIP2
