"""Database tables (SQLAlchemy 2 declarative). Alembic migrations mirror these.

The sync tables are shaped for the two hot paths:

* ``records`` holds each record once: its fields as **canonical JSON text** (``data``,
  served to pulls verbatim, never re-encoded), the per-field clocks, and the
  denormalised ``owner_id``/``customer_id`` that decide who sees it. ``version`` is the
  global change sequence; ``(owner_id, version)`` makes a rep's pull an index range scan.
* ``evictions`` tells a user's devices that a record left their scope.
* ``applied_mutations`` remembers every mutation's result for idempotent retries; it is
  written in the same transaction as the mutation's effect.
* ``sync_state`` is one row: the version counter (SQLite: locked by every writing
  transaction, which keeps versions visible in commit order; PostgreSQL: versions come
  from a sequence — :mod:`server.repository.state`), the purge horizon and the epoch.

Times on hot tables are epoch milliseconds (integers) to keep pushes cheap.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")

ROLES = ("rep", "manager", "admin")


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    #: The manager who leads the team (a user whose ``team_id`` is this team).
    manager_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Carried in every access token; raised by a password reset or deactivation, which
    #: revokes every token issued before at once (see :func:`server.deps.check_token`).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The last TOTP time step accepted: a one-time code works once (RFC 6238 §5.2).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(128))
    platform: Mapped[str | None] = mapped_column(String(64))
    app_version: Mapped[str | None] = mapped_column(String(32))
    protocol: Mapped[int | None] = mapped_column(Integer)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_writes: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    wipe: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Carried in the device's access tokens; raised by logout and revocation.
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Set when the token was exchanged for a new one; presenting it again is reuse.
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Record(Base):
    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("collection", "record_id", name="uq_records_collection_record"),
        Index("ix_records_version", "version"),
        Index("ix_records_owner_version", "owner_id", "version"),
        Index("ix_records_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    collection: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(64))
    #: Who sees it: the owner (customers, leads, targets), the owning customer's owner
    #: (customer-scoped entities); NULL for reference data everyone sees.
    owner_id: Mapped[str | None] = mapped_column(String(64))
    #: The customer the record hangs off (a customer's own id for customers).
    customer_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Canonical JSON of the fields (sorted keys, compact, UTF-8): served verbatim.
    data: Mapped[str] = mapped_column(Text)
    #: {"field": [hlc, version], ...} plus "_deleted" for the deletion clock.
    clocks: Mapped[str] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class Eviction(Base):
    __tablename__ = "evictions"
    __table_args__ = (Index("ix_evictions_user_version", "user_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    collection: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class RecordGrant(Base):
    """A record a user sees although its owner is out of their sight — a ticket assigned
    to an agent of another team (the rule: :data:`server.scope.GRANTING_FIELDS`). Kept on
    every write by the CRM flush (:mod:`server.crm.grants`); pull reads the records of a
    user's grants as one more stream."""

    __tablename__ = "record_grants"
    __table_args__ = (Index("ix_record_grants_record", "collection", "record_id"),)

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class AppliedMutation(Base):
    """A mutation's first answer, for idempotent retries. Mutation ids are the device's
    own: they are unique per ``(user_id, device_id)`` only, so two users (or devices)
    choosing one id never meet. ``content_hash`` is the SHA-256 of what the device sent:
    the same id with other content is ``mutation_id_reused``, never a silent drop."""

    __tablename__ = "applied_mutations"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``""`` for server-side writers without a device.
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mutation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: NULL for rows written before the hash existed (treated as matching).
    content_hash: Mapped[str | None] = mapped_column(String(64))
    #: The MutationResult JSON answered the first time.
    result: Mapped[str] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at_ms"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64))
    #: e.g. login.success, login.failure, mutation.applied, mutation.rejected,
    #: admin.reassign, admin.purge, device.revoke
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))


class SyncState(Base):
    __tablename__ = "sync_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Tombstones and evictions at or below this version are gone: older checkpoints
    #: must resync from scratch.
    purge_horizon: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Changes on every restore: checkpoints of another epoch must resync (``"0"`` is the
    #: epoch of a database never restored, and of the old ``v1:<n>`` checkpoints).
    epoch: Mapped[str] = mapped_column(String(32), default="0", server_default="0")


class LoginThrottle(Base):
    """One counter per throttled key (``user:<name>`` failures, ``addr:<ip>`` attempts),
    in the database so every server process and instance shares it."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start_ms: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)


class RecordKey(Base):
    """A normalised duplicate key of a customer or lead (:mod:`server.crm.keys`).

    One B-tree keyed ``(collection, key, record_id)`` (migration 0019; on SQLite a
    ``WITHOUT ROWID`` table): the duplicate check's lookup by key is a search in it, and
    a record's keys are replaced by difference — the keys of its stored fields against
    those of its new ones (:func:`server.crm.indexing.index_keys`) — so no second index
    by record is kept up to date on every write."""

    __tablename__ = "record_keys"
    __table_args__ = (
        PrimaryKeyConstraint("collection", "key", "record_id", name="record_keys_pkey"),
        {"sqlite_with_rowid": False},
    )

    collection: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(300))


class RecordSearch(Base):
    """Search text (characters, pinyin, initials) and pinyin sort key of a record: a
    narrow table a substring search scans instead of ``records``."""

    __tablename__ = "record_search"
    __table_args__ = (
        Index("ix_record_search_sort", "collection", "sort_key"),
        Index("ix_record_search_owner", "collection", "owner_id", "sort_key"),
    )

    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    sort_key: Mapped[str] = mapped_column(String(400))
    #: A copy of ``records.owner_id`` (scope without a join; :mod:`server.crm.indexing`).
    owner_id: Mapped[str | None] = mapped_column(String(64))
    #: The ``records.version`` this entry was made from (0: before migration 0015); the
    #: catch-up (:func:`server.crm.indexing.catch_up_search`) skips a record whose
    #: entry already has its version.
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: PostgreSQL: whether the entry is in the GIN indexes (trigrams, 1–2-character
    #: pieces), which are partial (``WHERE settled``): the catch-up writes entries
    #: unsettled and :func:`server.crm.indexing.settle_search` settles them later
    #: (migration ``0017``). Always true on SQLite.
    settled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class SearchState(Base):
    """The search catch-up's cursor (one row): every record change with a version up to
    ``cursor`` is in ``record_search`` (:mod:`server.crm.indexing`)."""

    __tablename__ = "search_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)


class ReminderRow(Base):
    """The reminder a task, contract or customer carries (:mod:`sync_protocol.reminders`),
    kept on every write so "what is due" is an index range scan."""

    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_due", "due_at_ms"),)

    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    due_at_ms: Mapped[int] = mapped_column(BigInteger)
    until_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: The user it is for when the record names one (a task's assignee); else the owner.
    user_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))


class AuthState(Base):
    """One row: raised by triggers on every change a token is checked against
    (migration ``0012_auth_state``; :mod:`server.authcache`)."""

    __tablename__ = "auth_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
