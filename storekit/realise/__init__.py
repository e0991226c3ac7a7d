"""Sandboxed builds into any store dir: plan (pure DAG), sandbox (bwrap argv, pure), runner (one build),
scheduler (parallel, in dependency order), driver (the `storekit build` workflow), recipe (TOML -> .drv).
"""
