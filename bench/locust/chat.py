"""Locust profile: non-streaming chat completions through fd2.

.venv/bin/python bench/locust/run.py chat            # starts a stand-in and fd2, runs headless
locust -f bench/locust/chat.py --headless -u 32 -r 8 -t 1m --host http://fd2:8080
"""

from __future__ import annotations

from common import CHAT, CHAT_PATH, chat_problem

from locust import FastHttpUser, task


class ChatUser(FastHttpUser):
    @task
    def chat(self) -> None:
        with self.client.post(CHAT_PATH, json=CHAT, name="chat", catch_response=True) as resp:
            problem = chat_problem(resp.status_code, resp.content)
            if problem:
                resp.failure(problem)
