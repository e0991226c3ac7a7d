# Not a book page: chapter 8's gcc against chapter 8's glibc (wrap_cc in the builder), with chapter
# 8's binutils beside it, for every package built after gcc: the system's `cc`.
wrap_cc "$out/bin" "" "$pkg_gcc" "$pkg_glibc" "$pkg_linux_api_headers" "$pkg_gcc"
for tool in "$pkg_binutils"/bin/*; do
    [ -e "$out/bin/${tool##*/}" ] || ln -s "$tool" "$out/bin/${tool##*/}"
done

# The book's sanity checks after gcc (§8.28): a program asks for the system's loader, finds the
# system's start files and headers (store paths, not /usr/lib and /usr/include), and runs; C++ finds
# the system's libstdc++; limits.h chains to glibc's.
cd "$NIX_BUILD_TOP"
echo 'int main(){}' > dummy.c
"$out/bin/gcc" dummy.c -v -Wl,--verbose > dummy.log 2>&1
case "$("$out/bin/readelf" -l a.out | grep 'program interpreter')" in
    *"$pkg_glibc/lib/ld-linux"*) ;;
    *) die "the system's gcc does not link against the system's loader" ;;
esac
grep -E -o "$pkg_glibc/lib/S?crt[1in].*succeeded" dummy.log || die "crt files not from $pkg_glibc"
grep -q "found ld-linux-x86-64.so.2 at $pkg_glibc/lib" dummy.log || grep found dummy.log
./a.out
printf '#include <iostream>\n#include <climits>\nint main(){ std::cout << SSIZE_MAX << " " << PATH_MAX << std::endl; }\n' > t.cc
"$out/bin/g++" t.cc -o tcc
./tcc
"$out/bin/readelf" -d tcc | grep -q "$pkg_gcc/lib" || die "tcc does not find the system's libstdc++"
rm -f dummy.c dummy.log a.out t.cc tcc
