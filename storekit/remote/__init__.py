"""SSH builders and stores: Nix's serve protocol as client and server, on wire/."""
