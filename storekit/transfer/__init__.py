"""Moving closures between stores: the workflows above both `store/` and `relocate/`.

`copy` (`storekit copy`, substitution, pushing to and pulling from caches), `relocating` (a relocating
copy and a store serving another store dir's paths), `relocation_index` (what a relocating server
remembers), `serve` (a store served over HTTP as a binary cache). They call `store/` and `relocate/`,
never the reverse; the CLI picks which to call.
"""
