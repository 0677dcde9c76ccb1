"""Server-side plumbing shared by the tracking and registry services (the ``modelreg-server``
distribution, beside ``tracking_service`` and ``registry_service``).

Typed service errors and their mapping to gRPC status + ErrorInfo, the call interceptor (logging,
request ids, the explicit per-call :class:`~modelreg_server.context.CallContext`), opaque page
tokens, database engines and Alembic schema checks, settings, metrics, the server bootstrap
(health, reflection, graceful stop), and the ``modelreg server`` / ``modelreg db upgrade``
commands (``commands``, ``launcher``). It depends on the client distribution (``modelreg``) for
the generated contracts and the wire conventions; the client never imports it, and it imports
neither service (it starts them as ``python -m`` processes).
"""
