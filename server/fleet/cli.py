"""``fieldsync doctor TARGET``: the diagnosis of a device (or of every device of a user)
read straight from the database — the server need not be running.

A running server writes its devices' activity every ``health_flush_interval_s``
seconds, so the last few seconds may not be visible yet.
"""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts import now_ms
from ..models import Device, User


def cmd_doctor(args: argparse.Namespace) -> int:
    from sync_protocol import CRM_SCHEMA

    from ..cli import _session, _settings
    from .doctor import diagnose

    settings = _settings(args.database_url)
    schema = CRM_SCHEMA

    with _session(settings) as session:
        devices = _devices(session, args.target)
        if not devices:
            print(f"fieldsync: no device or user {args.target!r}", file=sys.stderr)
            return 1
        now = now_ms()
        found = [
            diagnose(session, d, settings=settings, schema=schema, now_ms=now) for d in devices
        ]
    if args.json:
        print(json.dumps([d.model_dump(mode="json") for d in found], indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(d.text() for d in found))
    return 0 if all(d.verdict == "healthy" for d in found) else 3


def _devices(session: Session, target: str) -> list[Device]:
    device = session.get(Device, target)
    if device is not None:
        return [device]
    user = session.scalar(select(User).where(User.username == target))
    if user is None:
        return []
    devices = list(session.scalars(select(Device).where(Device.user_id == user.id)))
    devices.sort(key=lambda d: (d.last_seen is None, -(d.last_seen or d.created_at).timestamp()))
    return devices


def add_doctor_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser(
        "doctor", help="why isn't this phone syncing? (a device id, or a username)"
    )
    doctor.add_argument("target", help="device id, or username for all of that user's devices")
    doctor.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    doctor.add_argument("--database-url", default=None)
    doctor.set_defaults(func=cmd_doctor)
