"""Where a bootstrap keeps its files beside the store's logs: per-package logs and per-derivation timings.

`<log dir>/bootstrap/<profile>/<id>.log` is a plain copy of a package's build log (`tail -f` shows
where an hour-long build is), and `<id>.log.1` the attempt before; `<log dir>/bootstrap/timings/<drv
base name>.json` records how long a derivation took, keyed by the derivation so a changed package
starts without a stale figure.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from storekit.storepath import StorePath


@dataclass(frozen=True, slots=True)
class BootstrapFiles:
    """The layout under one store's log dir for one profile."""

    log_dir: str
    profile: str

    @property
    def root(self) -> str:
        return os.path.join(self.log_dir, "bootstrap")

    def package_log(self, pid: str) -> str:
        return os.path.join(self.root, self.profile, f"{pid}.log")

    def timing_file(self, drv: StorePath) -> str:
        return os.path.join(self.root, "timings", drv.base_name + ".json")

    def read_timing(self, drv: StorePath) -> float | None:
        """Seconds the derivation took, or None when it was never built here (or the file is damaged)."""
        try:
            with open(self.timing_file(drv)) as f:
                return float(json.load(f)["seconds"])
        except (OSError, ValueError, KeyError):
            return None

    def write_timing(self, drv: StorePath, pid: str, seconds: float) -> None:
        path = self.timing_file(drv)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"package": pid, "seconds": round(seconds, 1), "finished": int(time.time())}, f)
