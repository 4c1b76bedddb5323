"""The encrypted local store — the public face.

What is on disk (see :mod:`._local.sqlite`): the server's copy of every record, the
local writes not yet acknowledged (the outbox), the writes the server refused (dead
letters), attachment state and a few settings. Every payload is sealed with AES-256-GCM
bound to its row; ids, collection names, versions and HLCs are the only clear text.
What the app reads is a *view* (:mod:`._local.views`): the server copy with the pending
writes replayed on top, decrypted when read and not kept; text search goes through a
sealed search index (:mod:`._local.search`).

This class only forwards to the machinery in :mod:`._core` and its neighbours; every
public name here is documented in ``docs/sdk.md`` (a test holds the two together).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sync_protocol import ConflictChoice, SchemaRegistry

from . import _attention
from ._clock import Clock, SystemClock
from ._collection import Collection
from ._core import StoreCore
from ._errors import RecordNotFound, StoreClosed, WouldLoseWork
from ._events import Listener
from ._export import export_unsent
from ._local import keys
from ._local.crypto import KdfParams, KeyProvider, as_key_provider
from ._local.recovery import RecoveryReport, rebuild
from ._local.views import SearchKeys
from ._models import Conflict, DeadLetter
from ._status import SyncStatus, UnsentWork
from ._writes import group

log = logging.getLogger("client_sdk")


class Store:
    """An encrypted, offline-first replica of the user's data.

    Open one with :meth:`Store.open`; it is safe to share between the UI thread and a
    :class:`BackgroundSync` thread (every operation takes the store's lock).
    """

    def __init__(self, core: StoreCore) -> None:
        self._core = core
        self._collections: dict[str, Collection] = {}

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None,
        passphrase: str | KeyProvider,
        *,
        schema: SchemaRegistry,
        search_keys: SearchKeys | None = None,
        kdf: KdfParams | None = None,
        clock: Clock | None = None,
        encrypted: bool = True,
        check_integrity: bool = True,
    ) -> Store:
        """Open the store at ``path``, creating it if missing (``path=None``: in memory).

        ``passphrase`` is a string (Argon2id-derived key) or any :class:`KeyProvider`.
        ``kdf`` sets the Argon2id cost for a *new* store (an existing one keeps its own).
        ``encrypted=False`` creates a plaintext store — only for measuring overhead.
        An existing file is checked page by page (``PRAGMA quick_check``) so damage is
        reported here as :class:`StoreCorrupted`; ``check_integrity=False`` skips that.
        Raises :class:`WrongPassphrase` or :class:`StoreCorrupted`.
        """
        local, device_id = keys.open_local(
            path,
            as_key_provider(passphrase),
            kdf=kdf or KdfParams(),
            encrypted=encrypted,
            check_integrity=check_integrity,
        )
        core = StoreCore(
            local,
            schema,
            device_id=device_id,
            clock=clock or SystemClock(),
            search_keys=search_keys,
        )
        return cls(core)

    @classmethod
    def recover(
        cls,
        path: str | os.PathLike[str],
        passphrase: str | KeyProvider,
        *,
        schema: SchemaRegistry,
        **open_kwargs: Any,
    ) -> tuple[Store, RecoveryReport]:
        """Rebuild a damaged store (:class:`StoreCorrupted` at open): keep the device id,
        key, login and every readable pending write (same mutation ids), move the damaged
        file aside, and start the synced data over — the next ``sync()`` re-pulls it."""
        provider = as_key_provider(passphrase)
        report = rebuild(path, provider, open_kwargs.get("kdf") or KdfParams())
        return cls.open(path, provider, schema=schema, **open_kwargs), report

    # -- identity and state ---------------------------------------------------------------
    @property
    def device_id(self) -> str:
        return self._core.device_id

    @property
    def schema(self) -> SchemaRegistry:
        return self._core.schema

    @property
    def closed(self) -> bool:
        return self._core.closed or self._core.local.closed

    # -- records ----------------------------------------------------------------------------
    def collection(self, name: str) -> Collection:
        """The :class:`Collection` named ``name`` (must be in the schema)."""
        self._core.check_open()
        if name not in self._core.schema:
            raise RecordNotFound(f"the schema has no collection {name!r}")
        found = self._collections.get(name)
        if found is None:
            found = self._collections[name] = Collection(self._core, self._core.schema[name])
        return found

    def group(self) -> contextlib.AbstractContextManager[str]:
        """``with store.group():`` — the writes inside share one mutation group id: they
        are saved in one local transaction, pushed in one batch, and the server applies
        them all or none (a refused one refuses the others with ``group_rejected``)."""
        return group(self._core)

    def preload(self, collections: Iterable[str] | None = None) -> None:
        """Build the search index of collections now (all of the schema's by default)
        where they have none, so the first search is as fast as the rest; call it after
        the first sync, off the UI thread. An index is kept up to date from then on, and
        nothing is held in memory.

        The search texts are made without holding the store's lock — reads and writes
        from other threads (the UI) go on meanwhile — and stored only if nothing was
        written since they were read; else they are read again (the last time under the
        lock)."""
        core = self._core
        names = list(collections) if collections is not None else list(core.schema.entities)
        core.views.build_indexes(names, core.check_usable)

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; returns a function that unsubscribes."""
        return self._core.bus.subscribe(callback)

    # -- attention ----------------------------------------------------------------------------
    def status(self) -> SyncStatus:
        return _attention.status(self._core)

    def conflicts(self) -> list[Conflict]:
        """Open conflicts not yet resolved on this device, oldest first."""
        return _attention.conflicts(self._core)

    def resolve_conflict(
        self, conflict_id: str, choice: str | ConflictChoice = "local", value: Any = None
    ) -> None:
        """Settle a conflict with the local value, the remote value or a new ``value``."""
        _attention.resolve_conflict(self._core, conflict_id, choice, value)

    def dead_letters(self) -> list[DeadLetter]:
        """Writes the server refused, oldest first, with its error."""
        return _attention.dead_letters(self._core)

    def retry_dead_letter(
        self,
        dead_letter_id: str,
        fields: Mapping[str, Any] | None = None,
        *,
        override: Sequence[str] | None = None,
    ) -> None:
        """Queue a refused write again (as a new mutation), optionally with fixed
        ``fields``, and ``override`` soft checks the user chose to override (a
        ``possible_duplicate`` the user says is not one)."""
        _attention.retry_dead_letter(self._core, dead_letter_id, fields, override)

    def discard_dead_letter(self, dead_letter_id: str) -> None:
        _attention.discard_dead_letter(self._core, dead_letter_id)

    # -- nothing lost ---------------------------------------------------------------------
    def unsent_work(self) -> UnsentWork:
        """What erasing the store now would lose: pending writes, refused writes, open
        conflicts, photos the server does not hold yet."""
        return _attention.unsent_work(self._core)

    def export_unsent(self, path: str | os.PathLike[str]) -> Path:
        """Write the unsent work (and those photos) to a zip file at ``path``."""
        return export_unsent(self._core, path)

    # -- lifecycle ------------------------------------------------------------------------
    def change_passphrase(self, old: str | KeyProvider, new: str | KeyProvider) -> None:
        """Re-wrap the data key under ``new``; records are not re-encrypted."""
        with self._core.lock:
            self._core.check_open()
            keys.change_passphrase(self._core.local, as_key_provider(old), as_key_provider(new))

    def wipe(self, *, force: bool = False) -> None:
        """Erase the store: records, pending writes, attachments, the wrapped key, files.

        Refused with :class:`WouldLoseWork` while :meth:`unsent_work` is not empty,
        unless ``force=True``. Afterwards every call raises :class:`StoreClosed`,
        subscribers get :class:`StoreWiped`, and ``Store.open`` on the path starts afresh.
        """
        with self._core.lock:
            if not self.closed:
                work = self.unsent_work()
                if work and not force:
                    raise WouldLoseWork(
                        "wiping would discard unsent work: export it, or wipe with force=True",
                        work,
                    )
            elif not force:
                raise StoreClosed("the store is closed: open it to see what a wipe would lose")
            self._core.erase("wipe")
        log.warning("local store wiped")

    def close(self) -> None:
        self._core.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._core.local.path or 'memory'!s}, device_id={self.device_id!r})"
