# The native toolchain of the temporary system (not a book page). In the book, chapter 7 enters the
# chroot and finds gcc pass 2 in /usr/bin with glibc in /usr/lib; in the store, $out/bin has gcc,
# g++, cc, cpp that run gcc pass 2 against chapter 5's glibc, headers and gcc pass 2's libstdc++
# (wrap_cc in the builder), and binutils pass 2's tools beside them.
wrap_cc "$out/bin" "" "$pkg_gcc_pass2" "$pkg_glibc_cross" "$pkg_linux_headers" "$pkg_gcc_pass2"
for tool in "$pkg_binutils_pass2"/bin/*; do
    [ -e "$out/bin/${tool##*/}" ] || ln -s "$tool" "$out/bin/${tool##*/}"
done
cd "$NIX_BUILD_TOP"
echo 'int main(){ return 0; }' > t.c
"$out/bin/gcc" t.c -o t && ./t
