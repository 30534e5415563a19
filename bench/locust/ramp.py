"""Locust profile: a step ramp of non-streaming chat users, to find where latency turns up.
Users grow by FD2_LOCUST_STEP_USERS (8) every FD2_LOCUST_STEP_SECONDS (15) up to
FD2_LOCUST_MAX_USERS (128), then the run ends; read the per-step figures from the CSV history.

    .venv/bin/python bench/locust/run.py ramp
    locust -f bench/locust/ramp.py --headless --host http://fd2:8080 --csv ramp --csv-full-history
"""

from __future__ import annotations

import os

from chat import ChatUser

from locust import LoadTestShape

STEP_USERS = int(os.environ.get("FD2_LOCUST_STEP_USERS", "8"))
STEP_SECONDS = float(os.environ.get("FD2_LOCUST_STEP_SECONDS", "15"))
MAX_USERS = int(os.environ.get("FD2_LOCUST_MAX_USERS", "128"))

__all__ = ["ChatUser", "StepRamp"]


class StepRamp(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        step = int(self.get_run_time() // STEP_SECONDS) + 1
        users = step * STEP_USERS
        if users > MAX_USERS:
            return None
        return users, float(STEP_USERS)
