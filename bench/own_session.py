"""``python -m bench.own_session serve …`` — ``python -m server`` in a session of its own.

Linux's autogroup scheduler (``/proc/sys/kernel/sched_autogroup_enabled``) shares the
CPU between *sessions*, not processes: server instances started by a bench share the
bench's session, so on a machine where other sessions are busy the two instances and
the bench's own client threads split one session's share of the cores. Separate
services (systemd units, containers) each get their own; so does each instance here.
"""

from __future__ import annotations

import os

from server.cli import main

if hasattr(os, "setsid"):
    os.setsid()
raise SystemExit(main())
