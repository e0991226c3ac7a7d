# Shadow 4.13 (LFS 11.3 §8.25) from Debian's repack (4.13+dfsg1: contrib/atudel removed, which the
# build does not use). Store adaptations:
# - --prefix=$out and the book's /etc under $out (sysconfdir, so login.defs is $out/etc/login.defs);
#   shadow's configure makes exec_prefix empty only for prefix /usr, which is why the book passes
#   exec_prefix=/usr to make install.
# - crypt() comes from glibc's libcrypt, as in LFS 11.3 (the chain's glibc keeps it; see libxcrypt's
#   table). The book's SHA512 method, which every libcrypt has.
# - The book's configuration (pwconv, grpconv, `useradd -D --gid 999`, `passwd root`) edits the
#   running system's /etc: it is the rootfs's (chapter 9's /etc files), not a build's. What
#   `useradd -D --gid 999` writes is written here as a file. The setuid bits shadow's install sets
#   are not kept by the store: the profile's [rootfs.modes] declares them (passwd, su …).
# shellcheck disable=SC2016 # $(EXEEXT) is make's, in the Makefile
sed -i 's/groups$(EXEEXT) //' src/Makefile.in
find man -name Makefile.in -exec sed -i 's/groups\.1 / /'   {} \;
find man -name Makefile.in -exec sed -i 's/getspnam\.3 / /' {} \;
find man -name Makefile.in -exec sed -i 's/passwd\.5 / /'   {} \;

sed -e 's:#ENCRYPT_METHOD DES:ENCRYPT_METHOD SHA512:' \
    -e 's@#\(SHA_CRYPT_..._ROUNDS 5000\)@\100@'       \
    -e 's:/var/spool/mail:/var/mail:'                 \
    -e '/PATH=/{s@/sbin:@@;s@/bin:@@}'                \
    -i etc/login.defs

mkdir -p "$out"/bin
touch "$out"/bin/passwd
./configure --prefix="$out"            \
            --sysconfdir="$out"/etc    \
            --disable-static           \
            --with-group-name-max-length=32
make
make exec_prefix="$out" install
make -C man install-man

mkdir -p "$out"/etc/default
cat > "$out"/etc/default/useradd <<'USERADD'
# useradd defaults file (useradd -D --gid 999, LFS 11.3 §8.25.2; mail spool creation off)
GROUP=999
HOME=/home
INACTIVE=-1
EXPIRE=
SHELL=/bin/bash
SKEL=/etc/skel
CREATE_MAIL_SPOOL=no
USERADD
