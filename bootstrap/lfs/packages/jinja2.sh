# Jinja2 3.1.2 (LFS 11.3 §8.72), from Debian's orig (the Python package index's sdist). setuptools
# and wheel (deps) build it; MarkupSafe (a dep) is what it imports. Installed into $out (--prefix).
export PYTHONPATH="$pkg_setuptools/lib/python3.11/site-packages:$pkg_wheel/lib/python3.11/site-packages"
pip3 wheel -w dist --no-cache-dir --no-build-isolation --no-deps "$PWD"
pip3 install --no-index --no-cache-dir --no-deps --prefix="$out" --find-links dist Jinja2
PYTHONPATH="$out/lib/python3.11/site-packages:$pkg_markupsafe/lib/python3.11/site-packages" \
    python3 -c 'import jinja2; print(jinja2.Template("{{ x }}").render(x="jinja ok"))'
