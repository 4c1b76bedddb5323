"""Screen state and actions in plain Python — never import kivy here.

One module per screen family; each view-model takes a :class:`~.base.Session` (an open
client_sdk store, the sync client, the signed-in user and the translator) and is tested
against a real store in a temporary directory, without a window.
"""
