"""Generation tests share sample passages (sample_hits.py) and the fake OpenAI-compatible
server (fake_openai.py); under --import-mode=importlib this folder is not on sys.path by itself."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
