"""``fieldsync`` command line: serve, schema check, db upgrade, seed-demo, user create,
purge-tombstones.

Every command takes ``--database-url`` (default: ``FIELDSYNC_DATABASE_URL`` or
``sqlite:///./var/fieldsync.db``); everything else comes from ``FIELDSYNC_*`` settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.orm import Session

from sync_protocol.hlc import wall_clock_ms

from .settings import DEMO_PASSWORD, Settings


def _settings(database_url: str | None) -> Settings:
    if database_url:
        os.environ["FIELDSYNC_DATABASE_URL"] = database_url
    try:
        return Settings()
    except ValidationError as exc:
        messages = "; ".join(str(e.get("msg")) for e in exc.errors())
        print(f"fieldsync: invalid settings: {messages}", file=sys.stderr)
        raise SystemExit(2) from None


def _session(settings: Settings) -> Session:
    from .db import make_engine, make_session_factory

    return make_session_factory(make_engine(settings.database_url))()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .observability.logs import logging_config
    from .schema_config import SchemaConfigError, load_schema

    if args.schema:
        os.environ["FIELDSYNC_SCHEMA"] = args.schema
    settings = _settings(args.database_url)
    try:  # refuse a bad schema here, with every problem, before any worker starts
        load_schema(settings.schema_source)
    except SchemaConfigError as exc:
        print(f"fieldsync: cannot serve schema {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    # The app is built by uvicorn (in each worker) from the environment: hand it the
    # command line's choices that way.
    os.environ["FIELDSYNC_DATABASE_URL"] = settings.database_url
    if settings.schema_source and Path(settings.schema_source).exists():
        os.environ["FIELDSYNC_SCHEMA"] = str(Path(settings.schema_source).resolve())
    if args.access_log is not None:
        os.environ["FIELDSYNC_ACCESS_LOG"] = "true" if args.access_log else "false"
    if settings.metrics_multiprocess_dir:
        _prepare_multiprocess_metrics(settings.metrics_multiprocess_dir)
    level = args.log_level or settings.log_level
    uvicorn.run(
        "server.app:serve_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=level,
        access_log=False,  # the server's own access line replaces uvicorn's (no query strings)
        # Event streams (/v1/sync/events) never finish on their own: end them this long
        # after SIGTERM (devices reconnect to another instance).
        timeout_graceful_shutdown=3,
        log_config=logging_config(level, settings.log_format),
    )
    return 0


def _prepare_multiprocess_metrics(directory: str) -> None:
    """prometheus-client's multiprocess mode: every worker writes its metrics to files in
    ``directory`` (read at import, so set before the app is imported); stale files of a
    previous run are removed."""
    from pathlib import Path

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def cmd_schema_check(args: argparse.Namespace) -> int:
    from .schema_config import SchemaConfigError, load_schema

    try:
        schema = load_schema(args.schema)
    except SchemaConfigError as exc:
        print(f"fieldsync: cannot serve schema {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    print(
        f"schema {schema.name} version {schema.version} (apps from version {schema.min_client_version})"
    )
    for name, entity in schema.entities.items():
        parent = f" of {entity.parent_collection}" if entity.parent_collection else ""
        print(f"  {name}: {len(entity.fields)} fields, scope {entity.scope.value}{parent}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from .migrate import upgrade

    settings = _settings(args.database_url)
    upgrade(settings.database_url, args.revision)
    print("database is at the latest revision")
    return 0


def cmd_db_new_epoch(args: argparse.Namespace) -> int:
    from .manager.backup import start_new_epoch

    settings = _settings(args.database_url)
    epoch = start_new_epoch(settings.database_url)
    print(f"new sync epoch {epoch}: every device will resync from scratch")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from .demo import database_is_empty, seed_demo
    from .migrate import analyze

    settings = _settings(args.database_url)
    if not settings.demo_password_allowed:
        print(
            "fieldsync: demo data (with its public password) is for development only",
            file=sys.stderr,
        )
        return 2
    with _session(settings) as session:
        if not database_is_empty(session):
            if args.if_empty:
                print("database already has data; demo data not added")
                return 0
            print("fieldsync: the database is not empty (use --if-empty to skip)", file=sys.stderr)
            return 1
        counts = seed_demo(session, customers=args.customers)
    analyze(settings.database_url)  # a bulk load: fresh planner statistics (PostgreSQL)
    summary = ", ".join(f"{n} {c}" for c, n in sorted(counts.items()))
    print(f"demo data: users manager, rep1, rep2, admin (password {DEMO_PASSWORD}); {summary}")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from .accounts import audit, create_team, create_user
    from .auth import new_totp_secret
    from .models import Team

    settings = _settings(args.database_url)
    if args.password == DEMO_PASSWORD and not settings.demo_password_allowed:
        print("fieldsync: the demo password is not allowed outside development", file=sys.stderr)
        return 2
    with _session(settings) as session:
        team_id = None
        if args.team:
            team = session.scalar(
                select(Team).where((Team.id == args.team) | (Team.name == args.team))
            )
            if team is None:
                team = create_team(session, args.team)
            team_id = team.id
        secret = new_totp_secret() if args.totp else None
        user = create_user(
            session,
            username=args.username,
            password=args.password,
            role=args.role,
            team_id=team_id,
            display_name=args.display_name,
            totp_secret=secret,
        )
        audit(
            session,
            "admin.user_create",
            user_id=user.id,
            target=f"users/{user.username}",
            details={"role": user.role, "team_id": team_id},
        )
        session.commit()
        print(
            f"created {user.role} {user.username} ({user.id})"
            + (f" in team {team_id}" if team_id else "")
        )
        if secret:
            print(f"TOTP secret (add to the authenticator app): {secret}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from .repository import purge_tombstones

    settings = _settings(args.database_url)
    days = (
        settings.tombstone_retention_days if args.older_than_days is None else args.older_than_days
    )
    now = wall_clock_ms()
    with _session(settings) as session:
        result = purge_tombstones(
            session.connection(), older_than_ms=now - days * 86_400_000, now_ms=now
        )
        session.commit()
    print(
        f"purged {result.tombstones} tombstones and {result.evictions} evictions older than {days} days; purge horizon is now {result.purge_horizon}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fieldsync", description="Fieldsync server commands")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_db(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database-url",
            default=None,
            help="SQLAlchemy URL (sqlite:///... or postgresql://...)",
        )

    serve = sub.add_parser("serve", help="run the HTTP server (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--log-level",
        default=None,
        choices=("debug", "info", "warning", "error"),
        help="default: FIELDSYNC_LOG_LEVEL",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one structured line per request (default: FIELDSYNC_ACCESS_LOG)",
    )
    serve.add_argument(
        "--schema",
        default=None,
        help="schema to serve: a .toml/.json schema file or package.module:ATTR "
        "(default: FIELDSYNC_SCHEMA, else the CRM)",
    )
    add_db(serve)
    serve.set_defaults(func=cmd_serve)

    schema = sub.add_parser("schema", help="the served schema")
    schema_sub = schema.add_subparsers(dest="schema_command", required=True)
    check = schema_sub.add_parser(
        "check", help="check a schema file (or package.module:ATTR) the way serve would"
    )
    check.add_argument("schema", help="a .toml/.json schema file or package.module:ATTR")
    check.set_defaults(func=cmd_schema_check)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply the Alembic migrations")
    up.add_argument("--revision", default="head")
    add_db(up)
    up.set_defaults(func=cmd_db_upgrade)
    epoch = db_sub.add_parser(
        "new-epoch",
        help="after restoring a backup by other means than `fieldsync restore`: "
        "make every device resync",
    )
    add_db(epoch)
    epoch.set_defaults(func=cmd_db_new_epoch)

    seed = sub.add_parser("seed-demo", help="add the demo team and ~200 customers")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when data exists")
    seed.add_argument("--customers", type=int, default=200)
    add_db(seed)
    seed.set_defaults(func=cmd_seed_demo)

    user = sub.add_parser("user", help="user accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create a user")
    create.add_argument("--username", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--role", choices=("rep", "manager", "admin"), default="rep")
    create.add_argument("--team", help="team id or name (created when new)")
    create.add_argument("--display-name")
    create.add_argument("--totp", action="store_true", help="require a TOTP second factor")
    add_db(create)
    create.set_defaults(func=cmd_user_create)

    purge = sub.add_parser("purge-tombstones", help="delete old tombstones and evictions")
    purge.add_argument("--older-than-days", type=int, default=None)
    add_db(purge)
    purge.set_defaults(func=cmd_purge)

    from .fleet.cli import add_doctor_command
    from .maintenance.cli import add_maintain_command
    from .manager.backup import add_backup_commands

    add_doctor_command(sub)  # doctor (server/fleet/cli.py)
    add_maintain_command(sub)  # maintain (server/maintenance/cli.py)

    add_backup_commands(sub)  # backup, restore (server/manager/backup.py)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
