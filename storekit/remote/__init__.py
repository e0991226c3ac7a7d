"""Other machines over ssh, in Nix's serve protocol, on `wire/`: `ssh://` stores (`store`, over
`connection`) and remote builders (`machines`, `builders`) as the client, and `server`
(`storekit nix-store --serve`) as the far side real Nix drives."""
