"""The manager reports, computed in SQL in the caller's scope (``/v1/manager/reports``).

One module per concept — :mod:`.funnel`, :mod:`.performance` (reps and products),
:mod:`.customers`, :mod:`.campaigns`, :mod:`.service` (tickets), :mod:`.leads`,
:mod:`.followups` (contracts and overdue follow-ups) — each holding its response models
and the function that computes it from a :class:`~.base.ReportContext`. :mod:`.sql`
says how SQL reaches the JSON fields of a record on SQLite and PostgreSQL and applies
scope; :mod:`.routes` is the thin HTTP layer (JSON, or CSV with ``?format=csv``).
Definitions are in each module's docstring and in ``docs/manager-api.md``.
"""
