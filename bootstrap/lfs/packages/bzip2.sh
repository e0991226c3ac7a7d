# Bzip2 1.0.8 (LFS 11.3 §8.7), from Debian's orig (upstream's tarball). Store adaptations:
# - Built with glibc-toolchain (gcc pass 2 against chapter 8's glibc), as in the book, and before zlib
#   (see the profile).
# - PREFIX=$out; the book's install_docs patch (HTML docs only) is not applied.
# - The shared programs link libbz2.so.1.0 from $out/lib, which the system's compiler does not
#   search at run time: CC gets -Wl,-rpath for it (the book finds it in /usr/lib).
# - `make` runs bzip2's own tests (its default target), so run_tests is the `make test` step.
# shellcheck disable=SC2016 # $(PREFIX) is make's, in the Makefile
sed -i 's@\(ln -s -f \)$(PREFIX)/bin/@\1@' Makefile
sed -i "s@(PREFIX)/man@(PREFIX)/share/man@g" Makefile

make -f Makefile-libbz2_so CC="gcc -Wl,-rpath,$out/lib"
make clean
make libbz2.a bzip2 bzip2recover
run_tests make test
make PREFIX="$out" install

cp -av libbz2.so.* "$out"/lib
ln -sv libbz2.so.1.0.8 "$out"/lib/libbz2.so
cp -v bzip2-shared "$out"/bin/bzip2
for i in "$out"/bin/bzcat "$out"/bin/bunzip2; do
    ln -sfv bzip2 "$i"
done
rm -fv "$out"/lib/libbz2.a
# the headers the book installs with `make install` (bzlib.h) are there; check the program runs
echo storekit | "$out"/bin/bzip2 | "$out"/bin/bunzip2 | grep -qx storekit
