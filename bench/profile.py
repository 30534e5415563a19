"""Where fd2's time goes: py-spy samples fd2's worker while the load generator drives it.

    .venv/bin/pip install py-spy           # a tool, not a project dependency
    .venv/bin/python bench/profile.py [--concurrency 16] [--seconds 10]

fd2 (one worker) runs pinned to the server core like in `run.py`. Writes the collapsed stacks
(bench/results/profile-*/fd2.collapsed, for flame-graph tools) and prints the functions with the
most samples, by own time and including callees.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from procs import BENCH, BIN, Pinning, Processes, build_tools, run_json, tree
from targets import StreamShape, chat_body, start_fd2, start_standins, stream_body


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def top(collapsed: Path, count: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(count)]
    lines += ["", "including callees:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(count)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--stream",
        action="store_true",
        help="short streams (first chunk at 5 ms, 4 chunks 1 ms apart) instead of whole answers",
    )
    args = parser.parse_args()
    spy = py_spy()
    build_tools()
    pin = Pinning()
    out = BENCH / "results" / time.strftime("profile-%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True)
    collapsed = out / "fd2.collapsed"
    with Processes() as procs:
        shape = StreamShape(5, 4, 1) if args.stream else StreamShape(50, 64, 20)
        standins = start_standins(procs, pin, shape, 0, out)
        fd2 = start_fd2(procs, pin, standins, out, workers=1)
        worker = tree(fd2.process.pid)[-1]  # Granian's worker process: the one serving requests
        argv = [*pin.prefix(pin.tools), str(BIN / "loadgen"), "-url", fd2.chat_url,
                "-body", chat_body("gpt-4o-mini"), "-c", str(args.concurrency),
                "-duration", f"{args.seconds + 2}s", "-warmup", "0s"]  # fmt: skip
        if args.stream:
            argv[argv.index(fd2.chat_url)] = fd2.stream_url
            argv[argv.index(chat_body("gpt-4o-mini"))] = stream_body("gpt-4o-mini")
            argv += ["-mode", "stream", "-chunks", str(shape.chunks)]
        result: dict[str, Any] = {}
        load = threading.Thread(target=lambda: result.update(run_json(argv, args.seconds + 120)))
        load.start()
        time.sleep(1)
        subprocess.run(
            [spy, "record", "--pid", str(worker), "--duration", str(int(args.seconds)),
             "--rate", "250", "--format", "raw", "--output", str(collapsed), "--nonblocking"],
            check=True, capture_output=True,
        )  # fmt: skip
        load.join()
    print(f"load: {float(result['rps']):,.0f} req/s at c={args.concurrency}, "
          f"{result['errors']} errors")  # fmt: skip
    print(top(collapsed, args.top))
    print(f"collapsed stacks: {collapsed}")


if __name__ == "__main__":
    main()
