{
  description = "Drive storekit's staged Linux From Scratch bootstrap into /opt/store";

  # No inputs and no apps or dev shells (those would need nixpkgs, which is built for /nix/store):
  # the bootstrap makes its own tools from the host's and builds everything else from source, so
  # this flake only pins what to build, where, and the commands that do it:
  #   nix eval --raw .#bootstrap.script        # read them
  #   eval "$(nix eval --raw .#bootstrap.script)"   # run them, after `storekit bootstrap init bootstrap`
  outputs = { self }:
    let
      storeDir = "/opt/store";
      # A profile of storekit's bootstrap/lfs/: mini.toml (CI-sized) or lfs.toml (the whole book).
      profile = "bootstrap/lfs/mini.toml";
      storekit = args: "storekit bootstrap ${args} ${profile} --store ${storeDir}";
    in
    {
      bootstrap = {
        inherit storeDir profile;
        script = ''
          set -e
          ${storekit "plan"}
          ${storekit "build"}
          ${storekit "verify"}
          ${storekit "status"}
        '';
      };
    };
}
