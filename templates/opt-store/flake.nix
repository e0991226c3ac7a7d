{
  description = "A project whose packages build for /opt/store";

  # nixpkgs evaluates under any store dir, but cache.nixos.org serves /nix/store paths only: with
  # nix.conf from this directory, everything builds from source into /opt/store, unless it comes
  # from your own cache for /opt/store or is relocated from /nix/store by storekit (README.md).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      storeDir = "/opt/store";
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # Built under another store dir, these packages would silently be for that one: say so.
      forStoreDir = drv:
        nixpkgs.lib.warnIf (builtins.storeDir != storeDir)
          "this flake builds for ${storeDir} but Nix uses ${builtins.storeDir}: see nix.conf and README.md"
          drv;
    in
    {
      packages = forAllSystems (pkgs: rec {
        hello = forStoreDir pkgs.hello;
        default = hello;
      });
    };
}
