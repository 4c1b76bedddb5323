"""The local store: the only place in the SDK with SQL and sealing.

* :mod:`.base` — the :class:`LocalStore` protocol (small tables, plaintext in and out);
* :mod:`.sqlite` — the SQLite file, one module per table, payloads sealed;
* :mod:`.memory` — the same contract in memory;
* :mod:`.keys` — the data key and its wrapping (:mod:`.crypto` holds the primitives);
* :mod:`.apply` — carrying out the engine's plans in one transaction each;
* :mod:`.views` — the views the app reads, decrypted on demand (nothing cached);
* :mod:`.search` — the sealed search index;
* :mod:`.vault` — attachment bytes as sealed chunk files;
* :mod:`.recovery` — rebuilding a damaged file.
"""

from .base import LocalStore

__all__ = ["LocalStore"]
