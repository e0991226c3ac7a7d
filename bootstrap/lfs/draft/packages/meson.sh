# meson (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
pip3 wheel -w dist --no-cache-dir --no-build-isolation --no-deps "$PWD"

pip3 install --no-index --find-links dist meson
install -vDm644 data/shell-completions/bash/meson "$out"/share/bash-completion/completions/meson
install -vDm644 data/shell-completions/zsh/_meson "$out"/share/zsh/site-functions/_meson
