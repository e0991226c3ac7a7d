from __future__ import annotations

import sys
from pathlib import Path

# The fixtures module beside this file is imported by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
