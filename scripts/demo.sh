#!/usr/bin/env bash
# The storekit demo: Nix's model under a prefix that is not /nix/store, on the embedded default store
# (no root needed), with real Nix as the referee wherever it is installed. Safe to run again.
set -euo pipefail

storekit() { python3 -m storekit "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ storekit'; printf ' %q' "$@"; printf '\n'; storekit "$@"; }
have() { command -v "$1" >/dev/null 2>&1; }
export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters ='

work=$(mktemp -d "${TMPDIR:-/tmp}/storekit-demo.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
default="${XDG_DATA_HOME:-$HOME/.local/share}/storekit"
if [ -n "${STOREKIT_STORE:-}" ]; then
    # shellcheck disable=SC2016 # the variable's name, printed literally
    printf 'Using $STOREKIT_STORE=%s\n' "$STOREKIT_STORE"
else
    printf 'Using the embedded default store under %s\n' "$default"
fi

step "1. A small tree, hashed and named the way Nix does, for a store dir that is not /nix/store"
mkdir -p hello/bin hello/share/doc
printf '#!/bin/sh\necho "Hello from storekit"\n' > hello/bin/hello
chmod +x hello/bin/hello
printf 'héllo wörld\n' > hello/share/doc/README
ln -s bin/hello hello/run
show hash path hello
have nix && printf 'real Nix:  %s\n' "$(nix hash path hello)"
show path source hello --store-dir /opt/store
have nix-store && printf 'real Nix:  %s\n' "$(nix-store --store "local?store=/opt/store&state=$work/nix/var&real=$work/nix/store" --add hello)"
storekit nar dump hello > hello.nar
show nar ls --recursive --long hello.nar

step "2. The default store: add, inspect, verify; real Nix reads the same database"
path=$(storekit store add hello)
show store info "$path"
show store verify --check-contents
if have nix-store && [ -z "${STOREKIT_STORE:-}" ]; then
    printf 'real Nix: '
    nix-store --store "local?store=$default/store&state=$default/var/nix&log=$default/var/log/nix" -qR "$path"
fi

step "3. A sandboxed build: only its inputs visible, no network, references scanned"
if have bwrap && [ -x /bin/busybox ]; then
    mkdir -p tools && cp /bin/busybox tools/
    cat > greet.toml <<'EOF'
name = "greet"
builder = "${inputs.busybox}/busybox"
args = ["sh", "-c", "mkdir -p $out/bin && printf '#!/bin/sh\\nexec ${inputs.hello}/bin/hello\\n' > $out/bin/greet && chmod +x $out/bin/greet"]
[inputs]
busybox = { path = "./tools" }
hello = { path = "./hello" }
EOF
    greet=$(storekit build greet.toml)
    printf '%s\n' "$greet"
    show store closure "$greet"
    "$greet/bin/greet"
else
    echo "(skipped: needs bubblewrap and busybox-static: apt-get install -y bubblewrap busybox-static)"
    greet=$path
fi

step "4. A signed binary cache for the default store, and a second store substituting from it"
storekit key generate demo-cache-1 > demo.sk
pub=$(storekit key public < demo.sk)
printf 'public key: %s\n' "$pub"
dir=$(storekit path parse "$greet" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["storeDir"])')
show copy --to "file://$work/cache?store=$dir" --sign-key demo.sk "$greet"
show copy --from "file://$work/cache?store=$dir" --to "local?store=$dir&state=$work/second/var&real=$work/second/store" \
    --trusted-public-keys "$pub" "$greet"

step "5. Relocation: the same closure moved to /opt/store (files in a directory we own)"
opt="local?store=/opt/store&state=$work/opt/var&real=$work/opt/store"
new=$(storekit relocate --from "${STOREKIT_STORE:-$default/store}" --to "$opt" --mode content-addressed "$greet")
printf '%s\n' "$new"
show store closure --store "$opt" "$new"
if have nix-store; then
    nix-store --store "$opt" --verify --check-contents 2>/dev/null && echo "real Nix: nix-store --verify --check-contents passes"
fi

step "6. ELF: the editor patchelf users know, on a program compiled here"
if have gcc; then
    printf '#include <stdio.h>\nint main(void){puts("patched and running");return 0;}\n' > main.c
    gcc -o main main.c
    show elf set-rpath "/opt/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-some-library/lib:/opt/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-another/lib" main
    show elf print main
    ./main
else
    echo "(skipped: needs gcc)"
fi

step "7. Flake templates for users of non-/nix/store prefixes"
show template list

printf '\nDone in %ss. The default store lives under %s.\n' "$SECONDS" "$default"
