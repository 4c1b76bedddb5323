"""The console's own files: vendored libraries present with their licences and versions,
no page or template refers to another host, every message key exists in both languages,
and ``/docs`` is the offline explorer with the bearer scheme Authorize needs."""

from __future__ import annotations

import re

import pytest

from server.console.assets import STATIC, VENDORED
from server.console.i18n import MESSAGES, negotiate
from server.console.templating import TEMPLATES
from tests.server.conftest import World

_KEY = re.compile(r"""\bt\(\s*'([a-z_.]+)'""")


def test_vendored_files_and_versions() -> None:
    versions = (STATIC / "vendor" / "VERSIONS.md").read_text(encoding="utf-8")
    for package, (version, files) in VENDORED.items():
        assert f"`{package}` | {version}" in versions, package
        for name in files:
            assert (STATIC / "vendor" / name).stat().st_size > 0, name
        assert any("LICENSE" in f for f in files), package


def test_no_template_or_script_refers_to_another_host() -> None:
    for path in [*TEMPLATES.glob("*.html"), STATIC / "console.js", STATIC / "console.css"]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)=["'](https?:)?//""", text), path
        assert "cdn" not in text.lower(), path


def test_every_message_key_exists_in_both_languages() -> None:
    used = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(_KEY.findall(path.read_text(encoding="utf-8")))
    used |= set(
        _KEY.findall("".join(p.read_text() for p in (TEMPLATES.parent / "routes").glob("*.py")))
    )
    missing = sorted(k for k in used if k not in MESSAGES and not k.endswith("."))
    assert not missing, missing
    for key, (en, zh) in MESSAGES.items():
        assert en and zh, key


class _Request:
    def __init__(self, header: str, cookie: str | None = None) -> None:
        self.headers = {"accept-language": header}
        self.cookies = {"fs_lang": cookie} if cookie else {}


def test_language_from_cookie_then_accept_language_then_chinese() -> None:
    assert negotiate(_Request("en-US,en;q=0.9,zh-CN;q=0.8")) == "en"  # type: ignore[arg-type]
    assert negotiate(_Request("zh-TW,zh;q=0.9,en;q=0.8")) == "zh"  # type: ignore[arg-type]
    assert negotiate(_Request("de-DE,en;q=0.5,zh;q=0.7")) == "zh"  # type: ignore[arg-type]
    assert negotiate(_Request("fr-FR")) == "zh"  # type: ignore[arg-type]
    assert negotiate(_Request("zh-CN", cookie="en")) == "en"  # type: ignore[arg-type]


def test_docs_is_the_offline_explorer(sqlite_world: World) -> None:
    client = sqlite_world.client
    html = client.get("/docs").text
    assert "/console/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "/docs/openapi.json" in html
    assert client.get("/redoc").status_code == 404  # no second explorer with a CDN
    schema = client.get("/docs/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    login = schema["paths"]["/v1/auth/login"]["post"]
    devices = schema["paths"]["/v1/manager/devices"]["get"]
    assert login["security"] == [] and devices["security"] == [{"bearerAuth": []}]
    for name in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css"):
        assert client.get(f"/console/static/vendor/{name}").status_code == 200
    assert client.get("/", follow_redirects=False).headers["location"] == "/console/"


def test_csv_encodings_excel_writes() -> None:
    """Every encoding Chinese Excel and WPS save: UTF-8 with and without BOM, UTF-16
    ("Unicode text"), GBK and GB18030 (a name only GB18030 holds: 𠮷); bytes that are
    text in none of them are refused, not guessed."""
    from server.console.services.csv_files import Unreadable, decode

    text = "姓名,手机\n𠮷野家,13800000001\n"
    assert decode(b"\xef\xbb\xbf" + text.encode()).encoding == "UTF-8 (BOM)"
    assert decode(text.encode()).text == text
    assert decode(text.replace(",", "\t").encode("utf-16")).text == text.replace(",", "\t")
    assert decode(text.encode("gb18030")).text == text
    gbk = "姓名,手机\n张三,13800000001\n"
    assert decode(gbk.encode("gbk")) == decode(gbk.encode("gb18030"))
    assert decode(gbk.encode("gbk")).encoding == "GB18030/GBK"
    with pytest.raises(Unreadable):
        decode(b"\x81\x30\xff\xff")


def test_screenshots_cover_every_console_page() -> None:
    """``make screenshots`` renders every page a manager can open (Done-when 4): each
    GET route of the console that answers a page has a screenshot path (downloads, the
    language switch, thumbnails and the sign-in steps are not pages of their own)."""
    from fastapi.routing import APIRoute

    from server.console.routes import ROUTERS
    from server.console.screenshots import PAGES

    not_pages = (".csv", "/thumbnail", "/lang/", "/login")
    routes = [
        r.path
        for router in ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute)
        and "GET" in r.methods
        and r.path.startswith("/console")
        and not any(part in r.path for part in not_pages)
    ]
    assert len(routes) >= 15, routes
    shot_paths = [path.split("?")[0] for _name, path in PAGES]
    for route in routes:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", route) + "$"
        assert any(re.match(pattern, p) for p in shot_paths), route
