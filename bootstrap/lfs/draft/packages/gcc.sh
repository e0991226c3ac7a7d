# GCC (LFS 12.3 §8.29), adapted to the store: --prefix=$out; the libraries gcc builds in its tree
# (gmp, mpfr, mpc) are the system's here (chapter 8 builds them first). The book's `chown -R
# root:root` of the fixed headers is not needed: a store path has no owners (the export makes every
# file root's). Its sanity checks compare against the system's store paths, not /usr/lib.
# Not yet built by storekit (see bootstrap/lfs/draft/).
gcc_lib64_to_lib

mkdir -v build
cd build
../configure --prefix="$out"            \
             LD=ld                      \
             --enable-languages=c,c++   \
             --enable-default-pie       \
             --enable-default-ssp       \
             --enable-host-pie          \
             --disable-multilib         \
             --disable-bootstrap        \
             --disable-fixincludes      \
             --with-system-zlib
make
ulimit -s -H unlimited
sed -e '/cpython/d' -i ../gcc/testsuite/gcc.dg/plugin/plugin.exp
run_tests make -k check
../contrib/test_summary
make install

triplet=$("$out/bin/gcc" -dumpmachine)
gccver=$("$out/bin/gcc" -dumpversion)
ln -svr "$out/bin/cpp" "$out/lib"
ln -sv gcc.1 "$out/share/man/man1/cc.1"
mkdir -p "$out/lib/bfd-plugins"
ln -sfv "../../libexec/gcc/$triplet/$gccver/liblto_plugin.so" "$out/lib/bfd-plugins/"

# The book's sanity checks (§8.29): the program asks for the system's loader, and gcc finds the
# system's start files and headers (store paths here, not /usr/lib and /usr/include).
cd "$NIX_BUILD_TOP"
echo 'int main(){}' > dummy.c
"$out/bin/gcc" dummy.c -v -Wl,--verbose &> dummy.log
readelf -l a.out | grep 'program interpreter'
grep -E -o "/[^ ]*/S?crt[1in].*succeeded" dummy.log
grep 'SEARCH.*' dummy.log | sed 's|; |\n|g' | head
grep found dummy.log
rm -v dummy.c a.out dummy.log

mkdir -pv "$out/share/gdb/auto-load/usr/lib"
mv -v "$out"/lib/*gdb.py "$out/share/gdb/auto-load/usr/lib"
