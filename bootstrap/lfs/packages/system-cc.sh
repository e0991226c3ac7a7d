# Not a book page: the finished system's compiler, for the system's tree ([[rootfs]] "rootfs").
# system-toolchain's wrappers (chapter 8's gcc and binutils against chapter 8's glibc) run under the
# stage's /bin/sh, chapter 6's bash, because they are made before chapter 8's bash exists; in the
# system that would keep the temporary system in its closure. These are the same wrappers, copied,
# with chapter 8's bash as their interpreter and every mention of system-toolchain's path made this
# output's. Every other package of the chapter goes on building with system-toolchain: a new
# compiler for them would rebuild the whole chapter for no change in what it compiles.
src=$pkg_system_toolchain
shell=$(sed -n '1s/^#!//p' "$src/bin/gcc")
[ -n "$shell" ] || die "$src/bin/gcc is not a script"
cp -a "$src/." "$out/"
chmod -R u+w "$out"
while IFS= read -r -d '' f; do
    sed -i -e "1s|^#!$shell\$|#!$pkg_bash/bin/bash|" -e "s|$src|$out|g" "$f"
done < <(find "$out" -type f -print0)
if grep -r -l -F -e "$shell" -e "$src" "$out"; then
    die "the files above still name $shell or $src"
fi

# The book's sanity check (§8.28), with the copied wrappers: a program asks for chapter 8's loader,
# finds its start files in chapter 8's glibc, and runs; C++ too.
cd "$NIX_BUILD_TOP"
echo 'int main(void){ return 0; }' > dummy.c
"$out/bin/cc" dummy.c -v -Wl,--verbose > dummy.log 2>&1
loader=$("$out/bin/readelf" -l a.out | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
case $loader in
    "$pkg_glibc"/lib/ld-linux*) ;;
    *) die "a.out asks for '$loader', not $pkg_glibc's loader" ;;
esac
grep -E -q "$pkg_glibc/lib/S?crt1.o succeeded" dummy.log || die "crt1.o not from $pkg_glibc"
./a.out
printf '#include <iostream>\nint main(){ std::cout << "c++ ok" << std::endl; }\n' > t.cc
"$out/bin/g++" t.cc -o t
[ "$(./t)" = "c++ ok" ] || die "the C++ test program does not run"
rm -f dummy.c dummy.log a.out t.cc t
