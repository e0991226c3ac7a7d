# Wheel 0.38.4 (LFS 11.3 §8.53), from Debian's orig (the Python package index's sdist). It builds
# with setuptools (setup.cfg), which in the book is the one python's ensurepip installed; here that is
# the bundled setuptools wheel python keeps in ensurepip/_bundled (see python.sh), unpacked (wheel's
# bdist_wheel asks pkg_resources for setuptools' version, which it finds in a directory's
# dist-info, not inside a .whl on sys.path) and on PYTHONPATH with wheel's own src/ (its bdist_wheel
# command). Installed into $out (--prefix).
bundled=$(echo "$pkg_python"/lib/python3.11/ensurepip/_bundled/setuptools-*.whl)
[ -f "$bundled" ] || die "no bundled setuptools wheel in $pkg_python"
python3 -m zipfile -e "$bundled" "$NIX_BUILD_TOP"/setuptools-bundled
PYTHONPATH="$PWD/src:$NIX_BUILD_TOP/setuptools-bundled" pip3 wheel -w dist --no-cache-dir --no-build-isolation --no-deps "$PWD"
pip3 install --no-index --no-cache-dir --no-deps --prefix="$out" --find-links dist wheel
PYTHONPATH="$out/lib/python3.11/site-packages" "$out"/bin/wheel version
