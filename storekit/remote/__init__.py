"""Other machines over ssh, in Nix's serve protocol: `ssh://` stores (`store`, over `connection`) and
remote builders (`machines`, `builders`), the client side of what `nix-store --serve --write` serves."""
