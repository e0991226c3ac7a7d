# The book's sanity checks for chapter 5 (LFS 12.3 §5.5 and §5.6), run in the sandbox after the whole
# cross-toolchain stage: compile and link with the new cross toolchain, check that the program asks
# for the store's dynamic loader (`readelf -l`, not /lib64/ld-linux-x86-64.so.2), run it through that
# loader, and do the same for C++ against the new libstdc++.
mkdir -p "$out"
report="$out/report.txt"
check() { echo "ok: $*" | tee -a "$report"; }
fail() { echo "FAILED: $*" | tee -a "$report" >&2; exit 1; }

cd "$NIX_BUILD_TOP"
loader=$(echo "$pkg_glibc_cross"/lib/ld-linux*.so.*)
echo 'int main(){}' | "$LFS_TGT-gcc" -xc - || fail "$LFS_TGT-gcc cannot compile and link"
line=$(readelf -l a.out | grep ld-linux) || fail "a.out has no program interpreter"
echo "$line"
case "$line" in
    *"Requesting program interpreter: $loader]"*) check "readelf -l a.out: $loader" ;;
    *) fail "a.out asks for the wrong loader: $line" ;;
esac
"$loader" --library-path "$pkg_glibc_cross/lib" ./a.out || fail "a.out does not run through $loader"
check "a.out runs through the new loader"
printf '#include <iostream>\nint main(){ std::cout << "c++ ok" << std::endl; }\n' > t.cc
"$LFS_TGT-g++" t.cc -o t || fail "$LFS_TGT-g++ cannot compile and link"
[ "$(./t)" = "c++ ok" ] || fail "the C++ test program does not run"
readelf -d t | grep -q "$pkg_libstdcxx/lib" || fail "the C++ program does not find the new libstdc++"
check "C++ test program runs with $pkg_libstdcxx's libstdc++"
for f in a.out t; do
    if readelf -d "$f" | grep -E 'R(UN)?PATH' | grep -v "$NIX_STORE/"; then fail "$f: rpath outside the store"; fi
done
check "no rpath leaves the store"
