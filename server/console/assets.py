"""Static files of the console and ``/docs``, served by the server itself (no CDN).

``asset_url("console.css")`` gives ``/console/static/console.css?v=<digest>``: the digest
of the file's bytes, so a browser caches each file for a long time and still loads a
changed one at once. The vendored libraries and their versions are listed in
``static/vendor/VERSIONS.md``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

STATIC = Path(__file__).with_name("static")
PREFIX = "/console/static"

#: Vendored libraries: name -> (version, files under static/vendor/).
VENDORED: dict[str, tuple[str, tuple[str, ...]]] = {
    "htmx.org": ("2.0.11", ("htmx/htmx.min.js", "htmx/LICENSE")),
    "echarts": (
        "6.1.0",
        ("echarts/echarts.min.js", "echarts/LICENSE", "echarts/NOTICE", "echarts/LICENSE-d3"),
    ),
    "swagger-ui-dist": (
        "5.35.0",
        (
            "swagger-ui/swagger-ui-bundle.js",
            "swagger-ui/swagger-ui.css",
            "swagger-ui/favicon-32x32.png",
            "swagger-ui/LICENSE",
            "swagger-ui/NOTICE",
        ),
    ),
}


@cache
def _digest(name: str) -> str:
    path = STATIC / name
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "0"


def asset_url(name: str) -> str:
    return f"{PREFIX}/{name}?v={_digest(name)}"
