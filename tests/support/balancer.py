"""A real nginx (the Debian package) in front of server processes, for tests.

``Balancer(ports, dir)`` renders ``deploy/nginx/fieldsync.conf`` — the file
docs/deploy.md tells operators to install — with the test's upstream ports, listen
port and read timeout, wraps it in a minimal main configuration and runs
``nginx -g 'daemon off;'`` as a child process.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

from .server_proc import REPO_ROOT, free_port

DEPLOY_CONF = REPO_ROOT / "deploy" / "nginx" / "fieldsync.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


def render(upstreams: list[int], listen: int, *, events_read_timeout_s: int | None) -> str:
    text = DEPLOY_CONF.read_text(encoding="utf-8")
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=0;\n" for p in upstreams)
    text, n = re.subn(r"(    server 127\.0\.0\.1:\d+ max_fails=0;\n)+", servers, text)
    assert n == 1, "deploy/nginx/fieldsync.conf: upstream lines not found"
    text, n = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen};", text)
    assert n == 1
    if events_read_timeout_s is not None:
        text, n = re.subn(
            r"proxy_read_timeout 60s;", f"proxy_read_timeout {events_read_timeout_s}s;", text
        )
        assert n == 1
    return text


class Balancer:
    def __init__(
        self, upstreams: list[int], directory: Path, *, events_read_timeout_s: int | None = None
    ) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (make deb-deps)")
        self.binary = binary
        self.dir = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        (directory / "fieldsync.conf").write_text(
            render(upstreams, self.port, events_read_timeout_s=events_read_timeout_s)
        )
        d = directory
        (directory / "nginx.conf").write_text(
            f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/fieldsync.conf;
}}
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Balancer:
        conf = str(self.dir / "nginx.conf")
        subprocess.run([self.binary, "-t", "-q", "-c", conf, "-e", str(self.dir / "error.log")],
                       check=True)  # fmt: skip
        self.process = subprocess.Popen(
            [self.binary, "-c", conf, "-e", str(self.dir / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown: open streams end
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Balancer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
