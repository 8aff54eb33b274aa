"""The backend tests share make_kb (backend_kbs.py); put this folder on sys.path for it, as
tests/api does, since --import-mode=importlib adds none."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
