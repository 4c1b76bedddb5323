"""Keeping the server's data in shape: compaction (``compaction``) on a schedule inside
the server and as ``fieldsync maintain``. See docs/server.md "Compaction"."""
