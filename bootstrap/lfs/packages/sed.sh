# Sed (LFS 12.3 §8.32). The HTML manual needs makeinfo, which the early stages do not have.
./configure --prefix="$out"
make
if command -v makeinfo >/dev/null; then make html; fi
run_tests make check
make install
if [ -f doc/sed.html ]; then
    install -d -m755 "$out/share/doc/sed-$version"
    install -m644 doc/sed.html "$out/share/doc/sed-$version"
fi
