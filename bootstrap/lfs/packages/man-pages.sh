# Man-pages 6.03 (LFS 11.3 §8.3), from Debian's orig (upstream's tarball). Store adaptations:
# prefix=$out; its Makefile runs its recipes with `/usr/bin/env bash`, which the sandbox has no
# /usr for: the same shell and options by the bash on PATH. LFS 11.3 keeps the crypt(3) pages: its
# libcrypt is glibc's (no libxcrypt).
make SHELL="$(command -v bash) -Eeuo pipefail" prefix="$out" install
