"""Fieldsync's phone app (Kivy): a field rep's whole day, offline.

* :mod:`mobile_app.viewmodels` — screen state and actions in plain Python (no Kivy);
* :mod:`mobile_app.ui` — thin Kivy screens bound to them;
* :mod:`mobile_app.i18n` — simplified Chinese and English strings;
* :mod:`mobile_app.pinyin_search` — the store's ``search_keys`` hook (``zs`` finds 张三);
* :mod:`mobile_app.demo` — demo data written through the SDK (screenshots, tests);
* ``python -m mobile_app`` launches it, ``python -m mobile_app.screenshots DIR`` renders
  every screen to PNG.
"""
