"""The Control Tower's manifest directory: one `{project_id}.json` per project, read and written
through its models as the real service does it.

- Reading checks the file against the models every time: undeclared fields are dropped, defaults
  added, and a missing `created_at`/`updated_at` is the current local time (so it changes on every
  read). A file that is not JSON or fails the models reads as absent.
- Writing stores the checked manifest with `updated_at` set to now, in the real service's layout
  (`json.dump(..., indent=2)`, datetimes written as `str(datetime)`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ct_models import PROJECT
from ct_moments import iso
from ct_types import Invalid


class Store:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, project_id: str) -> Path:
        return self.directory / f"{project_id}.json"

    def stored(self, project_id: str) -> bytes | None:
        try:
            return self.path(project_id).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def load(self, project_id: str) -> dict[str, Any] | None:
        """The checked manifest (datetimes as `datetime`), or None when absent or invalid."""
        stored = self.stored(project_id)
        return None if stored is None else checked(stored)

    def save(self, manifest: dict[str, Any]) -> None:
        manifest["updated_at"] = datetime.now()
        text = json.dumps(manifest, indent=2, default=str)
        # Replaced in one step (the real service writes in place) so a reader never sees half.
        temporary = self.directory / f".{manifest['project_id']}.json.tmp"
        temporary.write_text(text)
        temporary.replace(self.path(manifest["project_id"]))

    def delete(self, project_id: str) -> bool:
        try:
            self.path(project_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def listing(self) -> list[dict[str, Any]]:
        """`GET /manifests` entries: every file that reads as a manifest, under the project_id it
        holds (which need not be its file name). Sorted by file name; the real service lists in
        directory order."""
        entries = []
        for path in sorted(self.directory.glob("*.json")):
            manifest = self.load(path.stem)
            if manifest is None:
                continue
            entries.append(
                {
                    "project_id": manifest["project_id"],
                    "project_name": manifest["project_name"],
                    "version": manifest["version"],
                    "environment": manifest["environment"],
                    "owner": manifest["owner"],
                    "module_count": len(manifest["modules"]),
                    "created_at": _when(manifest["created_at"]),
                    "updated_at": _when(manifest["updated_at"]),
                }
            )
        return entries


def checked(stored: bytes) -> dict[str, Any] | None:
    try:
        raw = json.loads(stored)
        manifest: dict[str, Any] = PROJECT.check(raw).value
    except (ValueError, Invalid):
        return None
    return manifest


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)
