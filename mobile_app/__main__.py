"""``python -m mobile_app --server http://127.0.0.1:8000`` — the app on the desktop.

Options: ``--data-dir`` (default ``~/.local/share/fieldsync``), ``--lang zh|en``
(default: the system locale), ``--size 360x640`` (the window, in pixels).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobile_app", description=__doc__)
    parser.add_argument("--server", help="server URL offered on first run")
    parser.add_argument("--data-dir", type=Path, help="where the encrypted store lives")
    parser.add_argument("--lang", choices=("zh", "en"), help="UI language")
    parser.add_argument("--size", default="360x640", help="window size WxH (desktop)")
    args = parser.parse_args(argv)

    os.environ.setdefault("KIVY_NO_ARGS", "1")  # our arguments, not Kivy's
    width, height = (int(v) for v in args.size.lower().split("x"))
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("input", "mouse", "mouse,multitouch_on_demand")

    from mobile_app.i18n import Translator
    from mobile_app.main import FieldsyncApp

    app = FieldsyncApp(data_dir=args.data_dir, tr=Translator(args.lang), server_url=args.server)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
