# Libcap 2.66 (LFS 11.3 §8.24 has 2.67; the same commands), from Debian's orig (upstream's
# tarball). Store adaptations: prefix=$out; the programs (capsh, getcap …) get an rpath to
# $out/lib, where their libcap.so is (the book's /usr/lib). Scripts the build runs name
# /bin/bash in their #! line, which the sandbox lacks (it has /bin/sh): make runs them with bash.
sed -i '/install -m.*STA/d' libcap/Makefile
sed -i 's|^\t\./mk|\tbash ./mk|' progs/Makefile
# mkcapshdoc.sh names each capability with fgrep, a wrapper GNU grep 3.8 calls obsolescent (it
# warns on every call) and a PATH need not have (the seed has none): without it every name comes
# out empty and the generated capshdoc.c differs from the shipped one, which stops the build.
# grep -F is the same search.
sed -i 's/\<fgrep /grep -F /' progs/mkcapshdoc.sh
make prefix="$out" lib=lib LDFLAGS="-Wl,-rpath,$out/lib"
run_tests make test
make prefix="$out" lib=lib LDFLAGS="-Wl,-rpath,$out/lib" install
