# Not a book page: chapter 8's compiler wrappers, one script for both (the profile names what they wrap).
# glibc-toolchain: gcc pass 2 against chapter 8's glibc, with binutils pass 2, for zlib, binutils and
# gcc (in the book, chapter 8's glibc installs over chapter 5's in /usr and gcc pass 2 links against
# it from then on). system-toolchain: chapter 8's gcc and binutils against chapter 8's glibc, the
# system's `cc`, for every later package. TOOLCHAIN_GCC, _LIBC, _HEADERS and _BINUTILS are store paths.
wrap_cc "$out/bin" "" "$TOOLCHAIN_GCC" "$TOOLCHAIN_LIBC" "$TOOLCHAIN_HEADERS" "$TOOLCHAIN_GCC"
for tool in "$TOOLCHAIN_BINUTILS"/bin/*; do
    [ -e "$out/bin/${tool##*/}" ] || ln -s "$tool" "$out/bin/${tool##*/}"
done

# The book's sanity checks (§8.5 adjusting the toolchain, §8.28 after gcc): a program asks for the
# glibc's loader, finds its start files (store paths, not /usr/lib), and runs; C++ finds the wrapped
# gcc's libstdc++; limits.h chains to glibc's (SSIZE_MAX, PATH_MAX).
cd "$NIX_BUILD_TOP"
echo 'int main(){}' > dummy.c
"$out/bin/gcc" dummy.c -v -Wl,--verbose > dummy.log 2>&1
case "$("$out/bin/readelf" -l a.out | grep 'program interpreter')" in
    *"$TOOLCHAIN_LIBC/lib/ld-linux"*) ;;
    *) die "the program does not use $TOOLCHAIN_LIBC's loader" ;;
esac
grep -E -o "$TOOLCHAIN_LIBC/lib/S?crt[1in].*succeeded" dummy.log || die "crt files not from $TOOLCHAIN_LIBC"
./a.out
printf '#include <iostream>\n#include <climits>\nint main(){ std::cout << SSIZE_MAX << " " << PATH_MAX << std::endl; }\n' > t.cc
"$out/bin/g++" t.cc -o tcc
./tcc
"$out/bin/readelf" -d tcc | grep -q "$TOOLCHAIN_GCC/lib" || die "tcc does not find $TOOLCHAIN_GCC's libstdc++"
rm -f dummy.c dummy.log a.out t.cc tcc
