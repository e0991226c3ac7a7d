# OpenSSL 3.0.22 (LFS 11.3, for 3.0.8: the same commands), from Debian's orig (upstream's
# tarball). Store adaptations:
# - --prefix=$out. OPENSSLDIR stays the book's /etc/ssl: it is compiled in, the place the
#   system's openssl.cnf and certificates are looked for, which must be writable by the system's
#   administrator (make-ca), not a store path. Its initial contents (openssl.cnf, misc/, empty
#   certs/ and private/) go to $out/etc/ssl, for the rootfs to link or copy into /etc/ssl.
# - zlib-dynamic: chapter 8's zlib (a dep) for the headers; libz is loaded when asked for.
# - The book's 30-test_afalg.t, known to fail on some kernel configurations, may fail.
# - The book's ./config only runs ./Configure, which starts `#! /usr/bin/env perl`: the sandbox has
#   no /usr/bin/env, so perl runs Configure (the same arguments; it finds the target itself).
# - bin/openssl links libssl and libcrypto from $out/lib, which the book's loader finds in /usr/lib
#   and a store path's needs in its rpath: -Wl,-rpath,$out/lib (Configure passes -Wl flags to the
#   link; openssl's Makefile adds no rpath of its own).
perl ./Configure --prefix="$out"         \
                 --openssldir=/etc/ssl \
                 --libdir=lib          \
                 shared                \
                 zlib-dynamic          \
                 -Wl,-rpath,"$out"/lib

make

HARNESS_JOBS=${NIX_BUILD_CORES:-1} run_tests make test

sed -i '/INSTALL_LIBS/s/libcrypto.a libssl.a//' Makefile
make MANSUFFIX=ssl install_sw install_docs
make DESTDIR="$NIX_BUILD_TOP"/ssl install_ssldirs
mkdir -p "$out"/etc
mv -v "$NIX_BUILD_TOP"/ssl/etc/ssl "$out"/etc/ssl

mv -v "$out"/share/doc/openssl "$out"/share/doc/openssl-3.0.22

cp -vfr doc/* "$out"/share/doc/openssl-3.0.22
