"""storekit's benchmarks: each module times storekit against the real tool (nix, patchelf, cp) in the
same run and reports ratios, so figures from different machines stay comparable.

Run `just bench` (all) or `just bench nar elf` (some). `--quick` shrinks the data for a smoke run.
"""
