"""What every benchmark script's JSON result carries, and how it is written."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def header() -> dict[str, str]:
    """Date and machine, with the 1-minute load average at the start: other jobs on the cores
    change every latency here, so a result says how busy the machine was."""
    return {"date": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()}-core {platform.machine()}, load average {os.getloadavg()[0]:.1f} at start"}


def emit(result: dict[str, Any], out: Path | None) -> None:
    """Print result as JSON, and write it to out too when given."""
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if out:
        out.write_text(text + "\n", "utf-8")
