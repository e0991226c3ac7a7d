# Python 3.11.2 (LFS 11.3 §8.51), from Debian's orig (upstream's tarball). Store adaptations:
# - --prefix=$out, and the programs find libpython3.11.so (--enable-shared) through an rpath to
#   $out/lib (the book's /usr/lib needs none).
# - ensurepip installs pip 22.3.1 and setuptools 65.5.0, as in the book. The book then upgrades
#   setuptools in place (its setuptools page, pip3 install); a store path cannot be upgraded, so the
#   bundled setuptools is removed from site-packages here and the system's is the setuptools package
#   (its wheel stays in ensurepip/_bundled, where the wheel package's build finds it).
# - The Python packages built after this one (flit-core, wheel, setuptools, markupsafe, jinja2,
#   meson) are installed into their own store paths, which the system's tree links into
#   /usr/lib/python3.11/site-packages: sitecustomize.py adds that directory to sys.path when it
#   exists (in the system; not in a build, where a package names its deps on PYTHONPATH).
# - The book's HTML documentation tarball is not among Debian's sources: not installed.
# - setup.py, which builds most extension modules, looks for headers and libraries only in the
#   directories CPPFLAGS and LDFLAGS name (-I, -L), not in the compiler's own search path: libffi
#   (ctypes), ncurses (curses), readline, gdbm, zlib, bzip2 and xz (deps) are named there, and
#   openssl through --with-openssl. The wrappers keep the rpath of each library a module links.
# - Tests: the book's make test; test_normalization needs the network and is allowed to fail.
cppflags="" ldflags="-Wl,-rpath,$out/lib"
for dep in "$pkg_libffi" "$pkg_ncurses" "$pkg_readline" "$pkg_gdbm" "$pkg_zlib" "$pkg_bzip2" "$pkg_xz" "$pkg_expat"; do
    cppflags="$cppflags -I$dep/include"
    ldflags="$ldflags -L$dep/lib"
done
./configure --prefix="$out"       \
            --enable-shared       \
            --with-system-expat   \
            --with-system-ffi     \
            --with-openssl="$pkg_openssl" \
            --enable-optimizations \
            CPPFLAGS="${cppflags# }" LDFLAGS="$ldflags"
make
# the modules the book's python has (no _uuid: util-linux comes later; no tkinter or nis)
LD_LIBRARY_PATH="$PWD" ./python -c 'import ssl, hashlib, ctypes, curses, readline, dbm.gnu, zlib, bz2, lzma, pyexpat' \
    || die "the python just built lacks a module the book's has (see setup.py's list above)"

run_tests make test TESTOPTS="--timeout 120"

make install

site="$out/lib/python3.11/site-packages"
rm -rf "$site"/setuptools "$site"/setuptools-*.dist-info "$site"/_distutils_hack \
       "$site"/pkg_resources "$site"/distutils-precedence.pth
ls "$out"/lib/python3.11/ensurepip/_bundled/setuptools-*.whl > /dev/null \
    || die "no bundled setuptools wheel in ensurepip/_bundled"
cat > "$site"/sitecustomize.py <<'SITE'
# storekit LFS: the system's site directory. Python packages built after python (flit-core,
# wheel, setuptools, markupsafe, jinja2, meson) live in store paths of their own, which the system's
# tree links into /usr/lib/python3.11/site-packages; python's own prefix is its store path.
import os
import site

if os.path.isdir("/usr/lib/python3.11/site-packages"):
    site.addsitedir("/usr/lib/python3.11/site-packages")
SITE
"$out"/bin/python3 -c 'import ssl, ctypes, bz2, lzma, zlib, readline, dbm.gnu, pyexpat, curses; print(ssl.OPENSSL_VERSION)'
"$out"/bin/pip3 --version
