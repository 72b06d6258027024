"""Live feeds: websockets and Server-Sent Events that catch up from the log and stay live.

- ``tailer``: one per process; LISTENs for appends and reads the log up to the safe horizon.
- ``feed``: one per client; catch-up from the log, then the tailer's batches, gap-free, in order.
- ``consumers`` (websockets), ``sse`` (``GET /api/v1/events/stream``), ``tickets``, ``query``.

The protocol is described in ``docs/live.md``.
"""
