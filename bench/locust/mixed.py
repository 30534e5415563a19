"""Locust profile: a multi-tenant mix. Most requests are chat completions spread over several
projects, modules and environments (X-Environment), some are embeddings, and a long tail must fail
cleanly: an unknown project (404) and a body that is not JSON (400), each answered with an
OpenAI-shaped error. A tail request counts as a success only when it fails exactly so.

    .venv/bin/python bench/locust/run.py mixed
    FD2_LOCUST_TENANTS=a,b FD2_LOCUST_MODULES=chat FD2_LOCUST_ENVIRONMENTS=development,production \
        locust -f bench/locust/mixed.py --headless -u 64 -r 16 -t 1m --host http://fd2:8080
"""

from __future__ import annotations

import os
import random

from common import CHAT, EMBED, EMBED_PATH, chat_problem, error_problem

from locust import FastHttpUser, task

TENANTS = os.environ.get("FD2_LOCUST_TENANTS", "tenant-0,tenant-1,tenant-2").split(",")
MODULES = os.environ.get("FD2_LOCUST_MODULES", "chat-0,chat-1").split(",")
ENVIRONMENTS = os.environ.get("FD2_LOCUST_ENVIRONMENTS", "development,staging,production").split(
    ","
)


class TenantUser(FastHttpUser):
    @task(80)
    def tenant_chat(self) -> None:
        tenant, module = random.choice(TENANTS), random.choice(MODULES)
        environment = random.choice(ENVIRONMENTS)
        with self.client.post(
            f"/{tenant}/{module}/v1/chat/completions",
            json=CHAT,
            headers={"X-Environment": environment},
            name=f"chat [{environment}]",
            catch_response=True,
        ) as resp:
            problem = chat_problem(resp.status_code, resp.content)
            if problem:
                resp.failure(problem)

    @task(10)
    def embeddings(self) -> None:
        with self.client.post(
            EMBED_PATH, json=EMBED, name="embeddings", catch_response=True
        ) as resp:
            if resp.status_code != 200 or b'"embedding"' not in (resp.content or b""):
                resp.failure(f"HTTP {resp.status_code} or no embedding")

    @task(3)
    def unknown_project(self) -> None:
        with self.client.post(
            "/no-such-project/chat/v1/chat/completions",
            json=CHAT,
            name="tail: unknown project (404 expected)",
            catch_response=True,
        ) as resp:
            self._expect_error(resp, 404)

    @task(3)
    def bad_json(self) -> None:
        tenant, module = random.choice(TENANTS), random.choice(MODULES)
        with self.client.post(
            f"/{tenant}/{module}/v1/chat/completions",
            data=b'{"messages": [',
            headers={"Content-Type": "application/json"},
            name="tail: bad JSON (400 expected)",
            catch_response=True,
        ) as resp:
            self._expect_error(resp, 400)

    @staticmethod
    def _expect_error(resp, status: int) -> None:  # type: ignore[no-untyped-def]
        problem = error_problem(resp.status_code, resp.content, status)
        if problem:
            resp.failure(problem)
        else:
            resp.success()
