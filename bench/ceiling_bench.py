"""The bare ceiling of the server bench: a minimal FastAPI + SQLite app serving stored JSON pages.

What any Python sync server on this machine pays at least for a pull: uvicorn (the same
loop and HTTP parser as Fieldsync), one FastAPI route, one indexed SQLite query, and a
page glued together from JSON text stored as is. No authentication, no scope, no
middleware, no compression. :mod:`bench.server_bench` runs it as its own process beside
the Fieldsync servers and measures both with the same client in the same rounds.

    python -m bench.ceiling_bench serve --db PATH --port N   # the app (a child process)

The page has the shape of a Fieldsync pull page (``changes`` with collection, record id,
version, op and the stored fields; ``checkpoint``, ``has_more``), so the client's work
per record is the same.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]


class Pull(BaseModel):
    checkpoint: int | None = None
    limit: int = 5000


def build(path: Path, documents: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Store ``(record_id, fields)`` as canonical JSON text, one version each."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS records (version INTEGER PRIMARY KEY, "
        "collection TEXT NOT NULL, record_id TEXT NOT NULL, data TEXT NOT NULL)"
    )
    rows = [
        (
            "customers",
            rid,
            json.dumps(fields, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
        )
        for rid, fields in documents
    ]
    conn.executemany("INSERT INTO records (collection, record_id, data) VALUES (?, ?, ?)", rows)
    conn.commit()
    (count,) = conn.execute("SELECT count(*) FROM records").fetchone()
    conn.close()
    return int(count)


def make_app(db: str) -> Any:
    """The bare app: ``POST /pull {"checkpoint": int|null, "limit": int}``."""
    from fastapi import FastAPI, Response

    app = FastAPI()
    local = threading.local()

    def connection() -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(db, check_same_thread=False)
        return conn

    @app.post("/pull")
    def pull(body: Pull) -> Response:
        since = body.checkpoint or 0
        rows = (
            connection()
            .execute(
                "SELECT version, collection, record_id, data FROM records "
                "WHERE version > ? ORDER BY version LIMIT ?",
                (since, body.limit + 1),
            )
            .fetchall()
        )
        more = len(rows) > body.limit
        rows = rows[: body.limit]
        last = rows[-1][0] if rows else since
        changes = ",".join(
            f'{{"collection":"{c}","record_id":"{r}","version":{v},"op":"upsert","fields":{d}}}'
            for v, c, r, d in rows
        )
        page = (
            f'{{"changes":[{changes}],"checkpoint":"{last}",'
            f'"has_more":{"true" if more else "false"}}}'
        )
        return Response(page.encode(), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


class CeilingServer:
    """The bare app in its own uvicorn process (the same defaults as ``fieldsync serve``)."""

    def __init__(self, db: Path, port: int) -> None:
        self.db = db
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CeilingServer:
        cmd = [sys.executable, "-m", "bench.ceiling_bench", "serve", "--db", str(self.db)]
        cmd += ["--port", str(self.port)]
        self.process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("the ceiling app did not start")

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--db", required=True)
    serve.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(
        make_app(args.db), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
