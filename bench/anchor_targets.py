"""The anchors every report is read against, measured in the same interleaved rounds as fd2:

- `nginx`: nginx (Debian's nginx-light, one worker) proxying to the stand-ins with pooled
  keep-alive connections and unbuffered streams: the best C proxy on the same load;
- `floor-fixed`: Granian + a raw ASGI app answering a fixed completion, no upstream (chat only):
  the design's floor, what Granian and ASGI alone cost;
- `floor-relay`: Granian + a raw ASGI app + one pooled aiohttp session relaying bytes: the floor
  of a Python gateway on this stack.

Each gets the server core(s), like fd2. `make bench-tools` installs nginx-light.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from procs import Pinning, Processes, free_port, wait_http
from targets import Standins, Target

ANCHORS = Path(__file__).resolve().parent / "anchors"
_NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/nginx-body;
    proxy_temp_path {workdir}/nginx-proxy;
    fastcgi_temp_path {workdir}/nginx-fastcgi;
    uwsgi_temp_path {workdir}/nginx-uwsgi;
    scgi_temp_path {workdir}/nginx-scgi;
    upstream chat {{ server 127.0.0.1:{chat}; keepalive 512; }}
    upstream stream {{ server 127.0.0.1:{stream}; keepalive 512; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        keepalive_requests 1000000;
        location /chat/ {{
            proxy_pass http://chat/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer bench-key";
        }}
        location /stream/ {{
            proxy_pass http://stream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer bench-key";
            proxy_buffering off;
        }}
    }}
}}
"""


def start_anchors(
    procs: Processes, pin: Pinning, standins: Standins, workdir: Path
) -> list[Target]:
    return [
        start_nginx(procs, pin, standins, workdir),
        start_floor(procs, pin, standins, workdir, "floor-fixed", "floor_fixed:app"),
        start_floor(procs, pin, standins, workdir, "floor-relay", "floor_relay:app"),
        start_floor(procs, pin, standins, workdir, "floor-lean", "floor_lean:app"),
    ]


def start_nginx(procs: Processes, pin: Pinning, standins: Standins, workdir: Path) -> Target:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed: run `make bench-tools` (Debian nginx-light)")
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        _NGINX_CONF.format(
            workdir=workdir, chat=standins.chat_port, stream=standins.stream_port, port=port
        )
    )
    child = procs.start(
        [*pin.server_prefix(), nginx, "-c", str(conf), "-p", str(workdir)],
        log=workdir / "nginx.log",
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/chat/v1/models", child, "nginx")
    return _target("nginx", base, child, "1 worker (C)")


def start_floor(
    procs: Processes,
    pin: Pinning,
    standins: Standins,
    workdir: Path,
    name: str,
    app: str,
    workers: int = 1,
) -> Target:
    port = free_port()
    granian = str(Path(sys.executable).with_name("granian"))
    env = {
        **os.environ,
        "FLOOR_CHAT": f"http://127.0.0.1:{standins.chat_port}",
        "FLOOR_STREAM": f"http://127.0.0.1:{standins.stream_port}",
        "FLOOR_CPU_SCHEDULING": pin.scheduling,
    }
    child = procs.start(
        [*pin.server_prefix(), granian, "--interface", "asgi", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--http", "1",
         "--no-ws", "--log-level", "warning", "--working-dir", str(ANCHORS), app],
        env=env,
        log=workdir / f"{name}.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/chat/v1/models", child, name)
    target = _target(name, base, child, f"{workers} worker(s) (Granian)")
    if name == "floor-fixed":
        target.stream_url = ""  # no upstream: nothing to stream
    return target


def _target(name: str, base: str, child: subprocess.Popen[bytes], workers: str) -> Target:
    return Target(
        name=name,
        chat_url=f"{base}/chat/v1/chat/completions",
        stream_url=f"{base}/stream/v1/chat/completions",
        process=child,
        workers=workers,
    )
