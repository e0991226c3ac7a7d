#!/usr/bin/env bash
# Regenerate the golden derivations from real Nix 2.8: instantiate cases.nix under the logical store
# dir /opt/store (files live in a temp dir, so no root is needed), then keep every .drv and the JSON
# that `nix show-derivation -r` prints for them.
#
#   tests/data/derivations/regenerate.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

export NIX_CONFIG="experimental-features = nix-command ca-derivations impure-derivations
sandbox = false
build-users-group =
substituters ="
export NIX_STORE_DIR=/opt/store NIX_STATE_DIR="$tmp/state" NIX_LOG_DIR="$tmp/log" HOME="$tmp/home"
store="local?store=/opt/store&real=$tmp/real&state=$tmp/state&log=$tmp/log"

nix --version | grep -q ' 2\.8\.' || { echo "regenerate.sh needs Nix 2.8 (found: $(nix --version))" >&2; exit 1; }

# Inputs that a text editor would mangle: raw control characters and bytes that are not UTF-8.
printf 'nul-free controls: \001 \007 \010 \014 \033 \177 | CR \r | bad UTF-8: \377 \376 \303( end' > "$here/src/control.bin"
printf '\377key' > "$here/src/key.bin"

mapfile -t roots < <(nix-instantiate --store "$store" "$here/cases.nix" 2>/dev/null)
rm -rf "$here/store"
mkdir -p "$here/store"
for drv in $(nix-store --store "$store" --query --requisites "${roots[@]}" | grep '\.drv$'); do
    cp "$tmp/real/$(basename "$drv")" "$here/store/"
done
chmod 644 "$here/store/"*.drv
nix show-derivation --store "$store" --recursive "${roots[@]}" > "$here/show.json"
# The roots, by attribute name, so tests can address a case.
nix-instantiate --store "$store" --eval --strict --json \
    -E "builtins.mapAttrs (n: d: d.drvPath) (import $here/cases.nix)" 2>/dev/null > "$here/roots.json"
echo "wrote $(ls "$here/store" | wc -l) derivations to $here/store"
