"""By hand, never in CI: records the cases (ct_case_list.py) against a running Control Tower, or
compares a server with recordings.

    python tests/standins/ct_record.py record --url URL --secret S --files DIR [--out DIR]
        [--case NAME ...] [--extra DIR]
    python tests/standins/ct_record.py compare --url URL --secret S --files DIR RECORDING...

`--files` is the server's manifest directory (the real service's is `manifests/` in its working
directory; start it with that directory empty). `--extra DIR` also records a case "extra" that puts
each `*.json` of DIR in the server's directory and reads it back (e.g. the real service's own
samples; such recordings are for comparing by hand, not for committing).
`compare` plays recordings against the server and prints every answer that differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ct_case_list import CASES
from ct_cases import Step, delete, file, get
from ct_replay import canonical, play

RECORDED = Path(__file__).resolve().parent / "ct_recorded"


def extra_case(directory: Path) -> list[Step]:
    steps: list[Step] = []
    for path in sorted(directory.glob("*.json")):
        steps += [file(path.name, path.read_text()), get(f"/manifests/{path.stem}")]
    steps.append(get("/manifests"))
    return steps + [delete(path.stem) for path in sorted(directory.glob("*.json"))]


def differences(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[str]:
    found = []
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        if "response" in want and canonical(want["response"]) != canonical(have["response"]):
            request = want["request"]
            found.append(
                f"step {index} {request['method']} {request['path']}:\n"
                f"  recorded {canonical(want['response'])}\n"
                f"  got      {canonical(have['response'])}"
            )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("record", "compare"))
    parser.add_argument("recordings", nargs="*", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True, help="the server's superuser secret")
    parser.add_argument("--files", type=Path, required=True, help="the server's manifest dir")
    parser.add_argument("--out", type=Path, default=RECORDED)
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--extra", type=Path)
    args = parser.parse_intermixed_args()
    if args.action == "compare":
        failed = 0
        for path in args.recordings:
            recorded = json.loads(path.read_text())["steps"]
            got = play(args.url, recorded, secret=args.secret, directory=args.files)
            for line in differences(recorded, got):
                failed += 1
                print(f"{path.name} {line}")
        print(f"{failed} differences")
        return 1 if failed else 0
    cases = {name: CASES[name]() for name in args.case or CASES}
    if args.extra:
        cases["extra"] = extra_case(args.extra)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, steps in cases.items():
        played = play(args.url, steps, secret=args.secret, directory=args.files)
        text = json.dumps({"case": name, "steps": played}, indent=1, ensure_ascii=False)
        (args.out / f"{name}.json").write_text(text + "\n")
        print(f"recorded {name}: {len(played)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
