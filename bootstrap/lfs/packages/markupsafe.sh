# MarkupSafe 2.1.2 (LFS 11.3 §8.71), from Debian's orig (the Python package index's sdist), with its
# C speedups built by the system's compiler. setuptools and wheel (deps) build it, on PYTHONPATH.
# Installed into $out (--prefix).
export PYTHONPATH="$pkg_setuptools/lib/python3.11/site-packages:$pkg_wheel/lib/python3.11/site-packages"
pip3 wheel -w dist --no-cache-dir --no-build-isolation --no-deps "$PWD"
pip3 install --no-index --no-cache-dir --no-deps --prefix="$out" --find-links dist MarkupSafe
PYTHONPATH="$out/lib/python3.11/site-packages" python3 -c 'import markupsafe._speedups; print(markupsafe.escape("<ok>"))'
