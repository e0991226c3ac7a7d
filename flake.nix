{
  description = "storekit: Nix-style stores under any prefix (flake templates for /opt/store and others)";

  # No inputs, so `nix flake show` and `nix flake init -t` work offline. The templates' names and
  # descriptions live in templates/templates.toml, which `storekit template list` reads too.
  outputs = { self }:
    let
      index = builtins.fromTOML (builtins.readFile ./templates/templates.toml);
    in
    {
      templates = builtins.mapAttrs
        (name: template: {
          path = ./templates + "/${name}";
          inherit (template) description;
        })
        index;
    };
}
