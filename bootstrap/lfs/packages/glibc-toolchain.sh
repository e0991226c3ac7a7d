# Not a book page. In the book, chapter 8's glibc installs over chapter 5's in /usr, and gcc pass 2
# links against it from then on. In the store the new glibc has its own prefix: $out/bin holds gcc,
# g++, cc, cpp running gcc pass 2 against it (wrap_cc in the builder), with binutils pass 2's tools
# beside them, for the packages chapter 8's gcc needs (zlib, binutils, gcc itself).
wrap_cc "$out/bin" "" "$pkg_gcc_pass2" "$pkg_glibc" "$pkg_linux_api_headers" "$pkg_gcc_pass2"
for tool in "$pkg_binutils_pass2"/bin/*; do
    [ -e "$out/bin/${tool##*/}" ] || ln -s "$tool" "$out/bin/${tool##*/}"
done

# The book's check after glibc (§8.5 adjusting the toolchain): programs ask for the new glibc's
# loader, link against its libc, and run.
cd "$NIX_BUILD_TOP"
echo 'int main(){ return 0; }' > t.c
"$out/bin/gcc" t.c -o t
case "$("$out/bin/readelf" -l t | grep 'program interpreter')" in
    *"$pkg_glibc/lib/ld-linux"*) ;;
    *) die "the program does not use $pkg_glibc's loader" ;;
esac
./t
printf '#include <limits.h>\n#include <stdio.h>\nint main(){ printf("%%ld %%d\\n", (long) SSIZE_MAX, PATH_MAX); }\n' > l.c
"$out/bin/gcc" l.c -o l
./l
rm -f t t.c l l.c
