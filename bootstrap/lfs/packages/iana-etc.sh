# iana-etc's equivalent: Debian 12 carries no iana-etc (LFS 11.3 §8.4); its nearest package is
# netbase 6.4, whose /etc/services and /etc/protocols are IANA's registries as Debian maintains
# them (a native Debian package: its own tarball, no orig). The book copies the two files to /etc;
# here they go to $out/etc, which the rootfs links into /etc. netbase's other files (rpc,
# ethertypes) are not the book's and are left out.
mkdir -p "$out"/etc
cp -v etc/services etc/protocols "$out"/etc
grep -q '^ssh[[:space:]]*22/tcp' "$out"/etc/services || die "services has no ssh entry"
grep -q '^tcp[[:space:]]*6[[:space:]]' "$out"/etc/protocols || die "protocols has no tcp entry"
