# The native toolchain of the temporary system (not a book page). In the book, chapter 7 enters the
# chroot and finds gcc pass 2 in /usr/bin with glibc in /usr/lib; in the store, $out/bin has gcc,
# g++, cc, cpp that run gcc pass 2 against chapter 5's glibc, headers and gcc pass 2's libstdc++
# (wrap_cc in the builder), and binutils pass 2's tools beside them.
wrap_cc "$out/bin" "" "$pkg_gcc_pass2" "$pkg_glibc_cross" "$pkg_linux_headers" "$pkg_gcc_pass2"
for tool in "$pkg_binutils_pass2"/bin/*; do
    [ -e "$out/bin/${tool##*/}" ] || ln -s "$tool" "$out/bin/${tool##*/}"
done

# The chapter's sanity check, as for chapter 5: programs built by gcc pass 2 (itself a program of the
# temporary system) ask for chapter 5's loader, find gcc pass 2's libstdc++, and run.
cd "$NIX_BUILD_TOP"
echo 'int main(){ return 0; }' > t.c
"$out/bin/gcc" t.c -o t
case "$("$out/bin/readelf" -l t | grep 'program interpreter')" in
    *"$pkg_glibc_cross/lib/ld-linux"*) ;;
    *) die "gcc pass 2's program does not use $pkg_glibc_cross's loader" ;;
esac
./t
printf '#include <iostream>\nint main(){ std::cout << "c++ ok" << std::endl; }\n' > t.cc
"$out/bin/g++" t.cc -o tcc
[ "$(./tcc)" = "c++ ok" ] || die "the C++ test program built by gcc pass 2 does not run"
"$out/bin/readelf" -d tcc | grep -q "$pkg_gcc_pass2/lib" || die "tcc does not find gcc pass 2's libstdc++"
rm -f t t.c tcc t.cc
