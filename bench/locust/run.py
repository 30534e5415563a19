"""Run a locust profile headless against a local fd2 in front of the Go stand-in.

    .venv/bin/python bench/locust/run.py PROFILE [-- extra locust arguments]
    .venv/bin/python bench/locust/run.py --smoke      # every profile for a few seconds (CI)

PROFILE is chat, stream, mixed or ramp. fd2 (one worker) is pinned to the first core, the
stand-ins and locust to the others. Locust's CSV files go to bench/results/locust/PROFILE*; its
exit code is non-zero when any request failed, so errors are never hidden.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from procs import BENCH, Pinning, Processes, build_tools  # noqa: E402
from synthetic import ENVIRONMENTS, write_projects  # noqa: E402
from targets import StreamShape, start_fd2, start_standins  # noqa: E402

PROFILES = {
    # profile: (users, spawn rate, run time) for a default run
    "chat": (32, 8, "60s"),
    "stream": (64, 16, "60s"),
    "mixed": (64, 16, "60s"),
    "ramp": (0, 0, ""),  # the profile's own step shape decides
}


def locust_argv(profile: str, host: str, csv: Path, smoke: bool, extra: list[str]) -> list[str]:
    users, rate, run_time = PROFILES[profile]
    argv = [str(Path(sys.executable).with_name("locust")), "-f", str(HERE / f"{profile}.py"),
            "--headless", "--host", host, "--only-summary", "--csv", str(csv)]  # fmt: skip
    if smoke:
        argv += [] if profile == "ramp" else ["-u", "4", "-r", "4", "-t", "2s"]
    elif users:
        argv += ["-u", str(users), "-r", str(rate), "-t", run_time]
    if profile == "ramp":
        argv += ["--csv-full-history"]
    return argv + extra


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("profile", nargs="?", choices=sorted(PROFILES))
    parser.add_argument("--smoke", action="store_true", help="every profile, a few seconds each")
    parser.add_argument("extra", nargs="*", help="passed to locust (after --)")
    args = parser.parse_args()
    if not args.smoke and not args.profile:
        parser.error("name a profile, or --smoke")
    profiles = sorted(PROFILES) if args.smoke else [args.profile]
    build_tools()
    pin = Pinning()
    out = BENCH / "results" / "locust"
    out.mkdir(parents=True, exist_ok=True)
    shape = StreamShape(5, 8, 2) if args.smoke else StreamShape(50, 64, 20)
    failed = []
    with Processes() as procs:
        standins = start_standins(procs, pin, shape, 0, out)
        manifests = out / "manifests"
        write_projects(manifests, 3, 2, ENVIRONMENTS, f"http://127.0.0.1:{standins.chat_port}/v1")
        fd2 = start_fd2(procs, pin, standins, out, workers=1)
        host = fd2.chat_url.split("/bench/", 1)[0]
        env = {**os.environ, "FD2_LOCUST_CHECK_ORDER": "1"}
        if args.smoke:
            env.update(
                FD2_LOCUST_STEP_SECONDS="1", FD2_LOCUST_STEP_USERS="2", FD2_LOCUST_MAX_USERS="4"
            )
        for profile in profiles:
            print(f"== locust profile {profile} against {host}", flush=True)
            argv = [
                *pin.prefix(pin.tools),
                *locust_argv(profile, host, out / profile, args.smoke, args.extra),
            ]
            if subprocess.run(argv, env=env, check=False, timeout=3600).returncode != 0:
                failed.append(profile)
    if failed:
        sys.exit(f"locust reported failures in: {', '.join(failed)} (see the summaries above)")


if __name__ == "__main__":
    main()
