"""The manifest the decode micro-benchmark reads (bench/synthetic.py makes it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic import ENVIRONMENTS, project_manifest


def manifest_bytes() -> bytes:
    manifest = project_manifest("tenant-1", 20, ENVIRONMENTS, "http://127.0.0.1:9/v1")
    return json.dumps(manifest).encode()
