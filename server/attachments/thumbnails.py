"""Thumbnails of photos, made on the server with Pillow when it is installed.

A phone on a slow link wants to see *that* a visit has three shelf photos without
downloading 3 x 4 MB: it asks for a JPEG whose longer edge is ``size`` pixels. EXIF
orientation is applied (phones store portrait photos sideways), transparency is
flattened onto white. Results are cached in memory by ``(sha256, size)`` — the content
is immutable, so the cache never goes stale.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable

from sync_protocol import ErrorCode, ProtocolError

THUMBNAIL_MIME = "image/jpeg"


def pillow_available() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


class ThumbnailUnavailable(ProtocolError):
    code = ErrorCode.NOT_FOUND


class ThumbnailMaker:
    def __init__(self, cache_entries: int = 256) -> None:
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._entries = cache_entries
        self._lock = threading.Lock()

    def make(self, digest: str, size: int, load: Callable[[], bytes]) -> bytes:
        key = (digest, size)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        thumb = render_thumbnail(load(), size)
        if self._entries:
            with self._lock:
                self._cache[key] = thumb
                while len(self._cache) > self._entries:
                    self._cache.popitem(last=False)
        return thumb


def render_thumbnail(data: bytes, size: int) -> bytes:
    """A JPEG at most ``size`` x ``size`` pixels of the image in ``data``."""
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:
        raise ThumbnailUnavailable("this server cannot make thumbnails (no Pillow)") from None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            image = ImageOps.exif_transpose(opened) or opened
            image.thumbnail((size, size))
            if image.mode in ("RGBA", "LA", "P"):
                rgba = image.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                image = flat
            elif image.mode != "RGB":
                image = image.convert("RGB")
            out = io.BytesIO()
            image.save(out, "JPEG", quality=80, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise ThumbnailUnavailable("the attachment is not an image this server can read") from None
