from __future__ import annotations

import sys
from pathlib import Path

# remote_fixtures beside this file is imported by name (--import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
