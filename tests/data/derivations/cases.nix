# Derivations that exercise every corner of the .drv format, hashing and output paths.
# Instantiated by regenerate.sh with real Nix 2.8 under the store dir /opt/store.
let
  sh = "/bin/sh";
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = sh; } // attrs);
  emptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
in rec {
  simple = mk { name = "simple"; args = [ "-c" "echo hi > $out" ]; };
  multi = mk { name = "multi"; outputs = [ "out" "dev" "doc" ]; args = [ "-c" ":" ]; };
  escapes = mk ({
    name = "escapes";
    args = [ "-c" "printf '%s\\n' \"$a\"" "tab\there" "cr\rhere" "nl\nhere" "back\\slash" "quote\"q" ];
    a = "dollar $HOME \${not} \\ \" \n \t \r end";
    unicode = "héllo wörld ✓ 日本 🚀";
    # Raw control characters and bytes that are not UTF-8 (Nix strings are bytes).
    control = builtins.readFile ./src/control.bin;
    empty = "";
  } // {
    # Env keys whose byte order differs from their code-point order in Python: U+E000 sorts
    # before the byte 0xff in Nix (std::string order) but after its surrogate escape U+DCFF.
    "${builtins.readFile ./src/key.bin}" = "key with a byte that is not UTF-8";
    "private" = "private use";
    "é" = "e acute";
    "Z" = "capital";
  });
  fodFlatSha256 = mk { name = "fod-flat"; outputHash = emptySha256; outputHashAlgo = "sha256"; };
  fodRecSha256 = mk { name = "fod-rec"; outputHashMode = "recursive"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; };
  fodSha1 = mk { name = "fod-sha1"; outputHashAlgo = "sha1"; outputHash = "da39a3ee5e6b4b0d3255bfef95601890afd80709"; };
  fodRecSha1 = mk { name = "fod-rec-sha1"; outputHashMode = "recursive"; outputHashAlgo = "sha1"; outputHash = "da39a3ee5e6b4b0d3255bfef95601890afd80709"; };
  fodSha512 = mk { name = "fod-sha512"; outputHash = "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="; };
  fodRecSha512 = mk { name = "fod-rec-sha512"; outputHashMode = "recursive"; outputHash = "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="; };
  # Two fixed-output derivations with different builders but the same output: their hashes modulo
  # coincide, so a consumer's inputs merge.
  fodTwinA = mk { name = "twin"; outputHashMode = "recursive"; outputHash = emptySha256; outputHashAlgo = "sha256"; args = [ "a" ]; };
  fodTwinB = mk { name = "twin"; outputHashMode = "recursive"; outputHash = emptySha256; outputHashAlgo = "sha256"; args = [ "b" ]; };
  twins = mk { name = "twins"; a = fodTwinA; b = fodTwinB; };
  # A chain and a diamond.
  chain1 = mk { name = "chain1"; dep = simple; };
  chain2 = mk { name = "chain2"; dep = chain1; };
  chain3 = mk { name = "chain3"; dep = chain2; fod = fodFlatSha256; };
  left = mk { name = "left"; dep = multi.dev; };
  right = mk { name = "right"; dep = multi.out; doc = multi.doc; };
  diamond = mk { name = "diamond"; l = left; r = right; m = multi; };
  # Input sources: a text file and a path literal copied in.
  sources = mk {
    name = "sources";
    script = builtins.toFile "script.sh" "echo from a text file\n";
    hello = ./src/hello.txt;
    args = [ "-c" ". ${builtins.toFile "inline.sh" "true"}" ];
  };
  # Content-addressed and impure derivations (experimental in Nix 2.8), and the deferred
  # input-addressed derivations that depend on them.
  floating = mk { name = "floating"; __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256"; outputs = [ "out" "lib" ]; };
  deferred = mk { name = "deferred"; lib = floating.lib; };
  impure = mk { name = "impure"; __impure = true; };
  afterImpure = mk { name = "after-impure"; dep = impure; };
}
