"""Realisations in a local store's database: where each output of a content-addressed derivation went.

Nix 2.8 (with `ca-derivations`) keeps them in `Realisations` (`drvPath` holds the `DrvOutput`'s hash,
`sha256:<hex>`, despite its name; `outputPath` points at the `ValidPaths` row) and the realisations
one depends on in `RealisationsRefs`. The statements are Nix's (`local-store.cc`), so Nix and storekit
read each other's rows: registering again with the same output path merges signatures, another path
is refused, and a dependency must already be registered with the same path.
"""

from __future__ import annotations

from storekit.errors import StoreError
from storekit.realisation import DrvOutput, Realisation
from storekit.store.schema import StoreDb
from storekit.storepath import StoreDir, StorePath

_QUERY = (
    "select Realisations.id, Output.path, Realisations.signatures from Realisations "
    "inner join ValidPaths as Output on Output.id = Realisations.outputPath "
    "where drvPath = ? and outputName = ?"
)
_REFS = (
    "select drvPath, outputName from Realisations join RealisationsRefs on realisationReference = "
    "Realisations.id where referrer = ?"
)
_INSERT = (
    "insert into Realisations (drvPath, outputName, outputPath, signatures) "
    "values (?, ?, (select id from ValidPaths where path = ?), ?)"
)
_UPDATE = "update Realisations set signatures = ? where drvPath = ? and outputName = ?"
_ADD_REF = (
    "insert or replace into RealisationsRefs (referrer, realisationReference) values ("
    "(select id from Realisations where drvPath = ? and outputName = ?), "
    "(select id from Realisations where drvPath = ? and outputName = ?))"
)


def _has_tables(db: StoreDb) -> bool:
    """Reads do not create the tables (a store Nix made without `ca-derivations` has none)."""
    return db.has_ca_tables()


def _core(db: StoreDb, sd: StoreDir, key: DrvOutput) -> tuple[int, Realisation] | None:
    rows = db.rows(_QUERY, (key.drv_hash, key.output))
    if not rows:
        return None
    row_id, path, sigs = rows[0]
    sig_list = tuple(sorted(str(sigs or "").split()))
    return int(str(row_id)), Realisation(sd.parse_path(str(path)), sig_list, id=key)


def query_realisation(db: StoreDb, sd: StoreDir, key: DrvOutput) -> Realisation | None:
    """Nix's `queryRealisation`: the realisation with the ones it depends on, or None."""
    if not _has_tables(db):
        return None
    found = _core(db, sd, key)
    if found is None:
        return None
    row_id, value = found
    dependent = {}
    for drv_hash, output in db.rows(_REFS, (row_id,)):
        dep_key = DrvOutput(str(output), str(drv_hash))
        dep = _core(db, sd, dep_key)
        assert dep is not None, "the schema's foreign key keeps dependencies registered"
        dependent[str(dep_key)] = dep[1].out_path
    return Realisation(value.out_path, value.signatures, id=key, dependent=dependent)


def register_realisation(db: StoreDb, sd: StoreDir, value: Realisation) -> None:
    """Nix's `registerDrvOutput`, in one transaction; the output path must be valid already."""
    assert value.id is not None, "a realisation is registered under its DrvOutput"
    key = value.id
    db.ensure_ca_schema()
    with db.transaction():
        if not db.rows("select 1 from ValidPaths where path = ?", (str(value.out_path),)):
            raise StoreError(
                f"cannot register realisation '{key}': its output '{value.out_path}' is not valid"
            )
        old = _core(db, sd, key)
        if old is None:
            sigs_text = " ".join(sorted(value.signatures))
            db.rows(_INSERT, (key.drv_hash, key.output, str(value.out_path), sigs_text))
        elif old[1].out_path == value.out_path:
            sigs = sorted(set(old[1].signatures) | set(value.signatures))
            db.rows(_UPDATE, (" ".join(sigs), key.drv_hash, key.output))
        else:
            raise StoreError(
                f"trying to register a realisation of '{key}', but this store already has another one: "
                f"local {old[1].out_path}, new {value.out_path}"
            )
        for dep_text, dep_path in sorted(value.dependent.items()):
            dep_key = DrvOutput.parse(dep_text)
            dep = _core(db, sd, dep_key)
            if dep is None:
                raise StoreError(
                    f"cannot register realisation '{key}': it depends on '{dep_key}', which is not registered"
                )
            if dep[1].out_path != dep_path:
                raise StoreError(
                    f"cannot register realisation '{key}': it depends on '{dep_key}' at '{dep_path}', but "
                    f"this store has it at '{dep[1].out_path}'"
                )
            db.rows(_ADD_REF, (key.drv_hash, key.output, dep_key.drv_hash, dep_key.output))


def realisation_closure(db: StoreDb, sd: StoreDir, keys: list[DrvOutput]) -> list[Realisation]:
    """The realisations of `keys` and every one they depend on, transitively, each with its own
    dependencies: two statements (a recursive walk of `RealisationsRefs`), where asking for one
    realisation at a time made a chain of n content-addressed builds ask n * n / 2 times. A key that
    is not registered is left out; the schema keeps every dependency of a registered one."""
    if not keys or not _has_tables(db):
        return []
    seeds = ", ".join("(?, ?)" for _ in keys)
    args = tuple(v for k in keys for v in (k.drv_hash, k.output))
    walk = (
        f"with recursive seed(drvPath, outputName) as (values {seeds}), "
        "closure(id) as (select Realisations.id from Realisations join seed using (drvPath, outputName) "
        "union select realisationReference from RealisationsRefs join closure on referrer = closure.id) "
    )
    found: dict[int, tuple[DrvOutput, str, str]] = {}
    rows = db.rows(
        walk + "select R.id, R.drvPath, R.outputName, V.path, R.signatures from closure "
        "join Realisations as R on R.id = closure.id join ValidPaths as V on V.id = R.outputPath",
        args,
    )
    for row_id, drv_hash, output, path, sigs in rows:
        found[int(str(row_id))] = (DrvOutput(str(output), str(drv_hash)), str(path), str(sigs or ""))
    dependent: dict[int, dict[str, StorePath]] = {i: {} for i in found}
    refs = db.rows(
        walk
        + "select referrer, realisationReference from RealisationsRefs join closure on referrer = closure.id",
        args,
    )
    for referrer, reference in refs:
        dep_key, dep_path, _ = found[int(str(reference))]
        dependent[int(str(referrer))][str(dep_key)] = sd.parse_path(dep_path)
    return [
        Realisation(sd.parse_path(path), tuple(sorted(sigs.split())), id=key, dependent=dependent[i])
        for i, (key, path, sigs) in found.items()
    ]


def realisations_of_paths(db: StoreDb, sd: StoreDir, paths: list[str]) -> list[Realisation]:
    """Every realisation whose output is one of `paths` (what to publish with them)."""
    found: list[Realisation] = []
    if not _has_tables(db):
        return found
    for path in paths:
        rows = db.rows(
            "select drvPath, outputName from Realisations where outputPath = "
            "(select id from ValidPaths where path = ?)",
            (path,),
        )
        for drv_hash, output in rows:
            r = query_realisation(db, sd, DrvOutput(str(output), str(drv_hash)))
            assert r is not None
            found.append(r)
    return found
