"""Server-side plumbing shared by the tracking and registry services.

It lives in the installed ``modelreg`` distribution so both services import one copy of it:
typed service errors and their mapping to gRPC status + ErrorInfo, the call interceptor
(logging, request ids, actor), opaque page tokens, database engines and Alembic schema checks,
and the server bootstrap (health, reflection, graceful stop).
"""
