# sysklogd (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
./configure --prefix="$out"      \
            --sysconfdir="$out"/etc  \
            --runstatedir=/run \
            --without-logger   \
            --disable-static   \
            --docdir="$out"/share/doc/sysklogd-2.7.0

make

make install

cat > "$out"/etc/syslog.conf << "EOF"
# Begin $out/etc/syslog.conf

auth,authpriv.* -/var/log/auth.log
*.*;auth,authpriv.none -/var/log/sys.log
daemon.* -/var/log/daemon.log
kern.* -/var/log/kern.log
mail.* -/var/log/mail.log
user.* -/var/log/user.log
*.emerg *

# Do not open any internet ports.
secure_mode 2

# End $out/etc/syslog.conf
EOF
