#!/bin/sh
# Set up a fresh Debian machine for storekit: the Debian tools it works with (real Nix 2.8 as the
# oracle, patchelf for comparison, bubblewrap for the sandbox and passt (pasta) for the network of
# fixed-output builds, gcc and binutils for real ELF files),
# then storekit itself with its development extras. Idempotent; needs root (or sudo) for apt-get.
set -eu
cd "$(dirname "$0")"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
pkgs="nix-bin patchelf bubblewrap passt busybox-static nginx-light xz-utils zstd gcc g++ gcc-multilib binutils binutils-powerpc64-linux-gnu file strace dpkg-dev gawk m4 bison texinfo"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[dev]'
python3 -c 'import storekit, typer, elftools, tomlkit, tqdm, pytest' 
