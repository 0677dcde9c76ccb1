"""Server-side plumbing shared by the tracking and registry services.

It ships in the server distribution (``modelreg-server``) beside the two services, so both import
one copy of it: typed service errors and their mapping to gRPC status + ErrorInfo, the call
context and the interceptor that sets it (logging, request ids, actor), opaque page tokens,
database engines and Alembic schema checks, the server bootstrap (health, reflection, graceful
stop), and the ``modelreg server`` / ``modelreg db upgrade`` commands (``commands``,
``launcher``). It imports neither service: it starts them as ``python -m`` processes.
"""
