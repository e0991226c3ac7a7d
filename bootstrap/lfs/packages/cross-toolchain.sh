# The cross toolchain as later stages see it (not a book page: the store's version of $LFS/tools
# plus the $LFS sysroot). $out/bin has $LFS_TGT-gcc, -g++, -cpp … that run gcc pass 1 against this
# stage's glibc, kernel headers and libstdc++ (store paths, see wrap_cc in the builder), and links to
# binutils pass 1's tools, so chapter 6's `--host=$LFS_TGT` finds one complete toolchain on PATH.
wrap_cc "$out/bin" "$LFS_TGT" "$pkg_gcc_pass1" "$pkg_glibc_cross" "$pkg_linux_headers" "$pkg_libstdcxx"
for tool in "$pkg_binutils_pass1/bin/$LFS_TGT-"*; do
    ln -s "$tool" "$out/bin/${tool##*/}"
done

# The book's sanity check (§5.5): compile and link a test program with the new toolchain; it must
# ask for this stage's dynamic loader, and run through it.
cd "$NIX_BUILD_TOP"
echo 'int main(){}' | "$out/bin/$LFS_TGT-gcc" -xc -
readelf -l a.out | grep ld-linux
case "$(readelf -l a.out | grep 'program interpreter')" in
    *"$pkg_glibc_cross/lib/ld-linux"*) ;;
    *) die "the test program does not use $pkg_glibc_cross's loader" ;;
esac
"$pkg_glibc_cross"/lib/ld-linux-x86-64.so.2 --library-path "$pkg_glibc_cross/lib" ./a.out
echo 'int main(){ return 0; }' > t.cc
"$out/bin/$LFS_TGT-g++" t.cc -o t && ./t
rm -f a.out t t.cc
