#!/bin/sh
# Set up a fresh Debian machine for storekit, from a checkout, as root or as a user with sudo:
#  1. the Debian tools storekit works with (real Nix 2.8+ as the oracle, bubblewrap and pasta for the
#     sandbox, gcc and binutils for real ELF files, nginx and sshd for the network tests, patchelf and
#     the shell linter, for comparison and lint), each taken from Debian's archive when this release has it;
#  2. the project's own virtual environment, .venv, made by Debian's python3 (python3-venv), holding
#     storekit (editable) and its development extras and nothing else from the machine;
#  3. `just`, the command runner of the README: Debian's package where the release has one (13 and
#     later), else the static binary the Python package index ships as `rust-just`, copied to
#     /usr/local/bin, the place for locally installed programs.
# Idempotent: a second run installs nothing and takes a few seconds. Nothing here names a Debian
# release: each package is looked up, and `a|b` takes the first that exists.
set -eu
cd "$(dirname "$0")"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

want="python3 python3-venv python3-pip ca-certificates nix-bin patchelf bubblewrap passt busybox-static
nginx-light|nginx xz-utils zstd gcc g++ gcc-multilib binutils binutils-powerpc64-linux-gnu file strace
dpkg-dev gawk m4 bison texinfo openssh-server openssh-client openssl shellcheck just|
radosgw ceph-mon ceph-osd clang qemu-user-static"
# Real programs for every machine the ELF editor patches: cross binutils, C libraries and libgcc
# (compiled with clang; Debian's gcc cross compilers conflict with gcc-multilib). A machine a release
# no longer carries (mips, ia64 ...) is optional: its tests skip and say which package is missing.
for m in arm64:aarch64-linux-gnu armhf:arm-linux-gnueabihf ppc64el:powerpc64le-linux-gnu \
         riscv64:riscv64-linux-gnu s390x:s390x-linux-gnu sparc64:sparc64-linux-gnu \
         mips:mips-linux-gnu mipsel:mipsel-linux-gnu; do
    arch=${m%%:*} triple=${m#*:}
    want="$want binutils-$triple| libc6-dev-$arch-cross| libgcc-12-dev-$arch-cross|libgcc-14-dev-$arch-cross|"
done
want="$want binutils-alpha-linux-gnu| binutils-sh4-linux-gnu| binutils-ia64-linux-gnu|"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
available() { apt-cache show --no-all-versions "$1" >/dev/null 2>&1; }

missing=""
updated=""
for alternatives in $want; do
    pick=""
    # shellcheck disable=SC2086
    for p in $(echo "$alternatives" | tr '|' ' '); do
        if installed "$p"; then pick="-"; break; fi
    done
    if [ "$pick" = "-" ]; then continue; fi
    if [ -z "$updated" ]; then $SUDO apt-get update -qq; updated=1; fi
    for p in $(echo "$alternatives" | tr '|' ' '); do
        if available "$p"; then pick=$p; break; fi
    done
    case "$alternatives" in
        *"|") ;;  # optional: nothing in this release provides it
        *) [ -n "$pick" ] || { echo "setup.sh: no Debian package provides '$alternatives'" >&2; exit 1; } ;;
    esac
    if [ -n "$pick" ]; then missing="$missing $pick"; fi
done
if [ -n "$missing" ]; then
    echo "setup.sh: installing from Debian's archive:$missing"
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# pasta gives a fixed-output build its network by opening /dev/net/tun as the user who builds.
# Debian's udev rules make it 0666; a machine without udev (a container) may leave it 0600, so that
# only root's builds could fetch.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    echo "setup.sh: making /dev/net/tun usable by every user (0666, as Debian's udev rules make it)"
    $SUDO chmod 0666 /dev/net/tun
fi

# The project's own environment: Debian's python3, never the machine's site-packages.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    rm -rf .venv
    /usr/bin/python3 -m venv .venv
fi
# editable_mode=compat: a plain path in a .pth file. The default editable finder imports pathlib, re
# and more when Python starts, about 12 ms on every storekit command (the start-up row of `just bench`).
.venv/bin/python -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[dev]'
.venv/bin/python -c 'import storekit.cli, typer, tomlkit, tqdm, pytest, elftools'

if ! command -v just >/dev/null 2>&1; then
    echo "setup.sh: installing just (from the Python package index's rust-just) to /usr/local/bin"
    $SUDO install -m 0755 .venv/bin/just /usr/local/bin/just
fi
echo "setup.sh: ready (.venv: $(.venv/bin/storekit --version))"
