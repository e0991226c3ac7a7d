# Meson 1.0.1 (LFS 11.3 §8.55), from Debian's orig (upstream's sdist). setuptools and wheel (deps)
# build it, on PYTHONPATH. Store adaptations: installed into $out (--prefix); bin/meson, a script
# pip writes, imports mesonbuild from $out's site-packages, which no python searches by itself (the
# system's tree links it into /usr/lib/python3.11/site-packages, a later package's build runs meson
# from the store): the script puts that directory first on sys.path, as nixpkgs' wrapped programs do.
export PYTHONPATH="$pkg_setuptools/lib/python3.11/site-packages:$pkg_wheel/lib/python3.11/site-packages"
pip3 wheel -w dist --no-cache-dir --no-build-isolation --no-deps "$PWD"
pip3 install --no-index --no-cache-dir --no-deps --prefix="$out" --find-links dist meson
unset PYTHONPATH
sed -i "1a import sys; sys.path.insert(0, '$out/lib/python3.11/site-packages')" "$out"/bin/meson
install -vDm644 data/shell-completions/bash/meson "$out"/share/bash-completion/completions/meson
install -vDm644 data/shell-completions/zsh/_meson "$out"/share/zsh/site-functions/_meson
"$out"/bin/meson --version | grep -qx 1.0.1 || die "meson --version is not 1.0.1"
