from __future__ import annotations

import sys
from pathlib import Path

# Modules beside this file (test_build_plan's graphs) are imported by name (--import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
