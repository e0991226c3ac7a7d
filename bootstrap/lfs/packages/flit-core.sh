# Flit-core 3.8.0 (LFS 11.3 §8.52), flit's build backend, from the Python package index's sdist at
# Debian 12's version (see the profile's table). Store adaptations: pip installs into $out
# (--prefix), whose lib/python3.11/site-packages the system's tree links into /usr/lib/python3.11;
# no cache (--no-cache-dir) and no index (--no-index), as in the book.
pip3 wheel -w dist --no-cache-dir --no-build-isolation --no-deps "$PWD"
pip3 install --no-index --no-cache-dir --no-deps --prefix="$out" --find-links dist flit_core
PYTHONPATH="$out/lib/python3.11/site-packages" python3 -c 'import flit_core.buildapi; print(flit_core.__version__)'
