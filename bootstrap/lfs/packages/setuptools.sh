# Setuptools 66.1.1 (LFS 11.3 §8.54), from Debian's orig (the Python package index's sdist): the
# system's setuptools (the book's pip3 install upgrades the bundled one; see python.sh). It builds
# with its own backend (backend-path) and the wheel package (its bdist_wheel), a dep, on PYTHONPATH.
# Installed into $out (--prefix).
PYTHONPATH="$pkg_wheel/lib/python3.11/site-packages" \
    pip3 wheel -w dist --no-cache-dir --no-build-isolation --no-deps "$PWD"
pip3 install --no-index --no-cache-dir --no-deps --prefix="$out" --find-links dist setuptools
PYTHONPATH="$out/lib/python3.11/site-packages" python3 -c 'import setuptools; print(setuptools.__version__)' \
    | grep -qx 66.1.1 || die "the installed setuptools is not 66.1.1"
