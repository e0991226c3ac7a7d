# Not a book page: chapter 8's gcc against chapter 8's glibc (wrap_cc in the builder), with chapter
# 8's binutils beside it, for every package built after gcc.
wrap_cc "$out/bin" "" "$pkg_gcc" "$pkg_glibc" "$pkg_linux_headers" "$pkg_gcc"
for tool in "$pkg_binutils"/bin/*; do
    [ -e "$out/bin/${tool##*/}" ] || ln -s "$tool" "$out/bin/${tool##*/}"
done
