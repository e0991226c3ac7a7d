# bzip2 (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
# shellcheck disable=SC2016 # $(PREFIX) is make's, in the Makefile
sed -i 's@\(ln -s -f \)$(PREFIX)/bin/@\1@' Makefile

sed -i "s@(PREFIX)/man@(PREFIX)/share/man@g" Makefile

make -f Makefile-libbz2_so
make clean

make

make PREFIX="$out" install

cp -av libbz2.so.* "$out"/lib
ln -sv libbz2.so.1.0.8 "$out"/lib/libbz2.so

cp -v bzip2-shared "$out"/bin/bzip2
for i in $out/bin/{bzcat,bunzip2}; do
  ln -sfv bzip2 "$i"
done

rm -fv "$out"/lib/libbz2.a
