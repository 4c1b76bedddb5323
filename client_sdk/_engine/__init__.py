"""The sync engine: pure decisions, no I/O.

It turns local outbox entries into protocol requests and protocol answers into local
operations (plans the local store executes), and holds the one table from an HTTP
status / error code to what happens next (:mod:`.responses`). It imports nothing that
talks to a disk or a network: the runner (:mod:`client_sdk._runner`) carries its
requests to a transport and its plans to the local store.
"""
