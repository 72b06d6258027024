"""The gRPC API (``proto/flunq/events/v1/events.proto``): same service functions, same rules as REST.

``server.py`` builds the grpcio asyncio server (reflection, health, message size limit);
``rpc.py`` turns a plain function into a handler (auth, scopes, errors, a database thread);
``event_store.py``, ``snapshots.py`` and ``subscriptions.py`` (pull consumer groups) are the
services; ``subscribe.py`` is the live feed;
``convert.py`` maps between protobuf messages and the service layer; ``errors.py`` maps errors to
gRPC status codes. Run it with ``python manage.py grpcserver``.
"""
