# Flex 2.6.4 (LFS 11.3 §8.14), from Debian's orig (upstream's tarball). Store adaptation:
# --prefix=$out; flex records the m4 it finds at configure time, chapter 8's (its dep).
./configure --prefix="$out" \
            --docdir="$out"/share/doc/flex-2.6.4 \
            --disable-static
make
run_tests make check
make install
ln -sv flex "$out"/bin/lex
