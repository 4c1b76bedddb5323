"""``python -m server`` — the ``fieldsync`` command line."""

from .cli import main

raise SystemExit(main())
