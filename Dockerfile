# Two images, one per target. The default (the last stage, `server`): both services and the MLflow
# REST endpoint. `docker build --target serving`: a model server, `modelreg serve`, with only the
# client distribution.
#
# The server image: the build stage makes wheels of both distributions (generated gRPC
# code is already in the source tree, so nothing is generated here): the client from clients/, the
# server from the root with its database drivers. Naming ./clients lets pip take the server's
# `modelreg` requirement from the source tree; its sklearn extra is not asked for, so neither
# scikit-learn, pandas, SciPy, NumPy nor skops is built or installed. The final stage installs only
# the server distribution (which pulls in the client), has no compilers, runs as a non-root user
# and needs no network at start.
#
# The serving image: the client distribution with its `serve` (HTTP server, metrics) and `sklearn`
# (the flavor it loads) extras, and nothing of the server: no database drivers, no SQLAlchemy. It
# reaches the registry over gRPC like any client (MODELREG_REGISTRY_URI, MODELREG_TOKEN,
# MODELREG_CA_FILE) and keeps the models it loaded in /cache (MODELREG_CACHE_DIR), which a volume
# keeps across restarts so that it can start from there while the registry is unreachable.
FROM python:3.11-slim AS serving-build
WORKDIR /src
COPY clients ./clients
RUN pip wheel --no-cache-dir --wheel-dir /wheels './clients[serve,sklearn]'

FROM python:3.11-slim AS serving
RUN useradd --system --uid 10001 --create-home --home-dir /home/modelreg modelreg
COPY --from=serving-build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'modelreg[serve,sklearn]' \
    && rm -rf /wheels
# A new volume mounted here takes this directory's owner.
RUN mkdir /cache && chown modelreg /cache
USER modelreg
WORKDIR /home/modelreg
ENV PYTHONUNBUFFERED=1 MODELREG_CACHE_DIR=/cache
EXPOSE 5001
# Arguments: MODEL_URI and the flags (`--host 0.0.0.0` to be reachable from outside the container).
ENTRYPOINT ["modelreg", "serve"]

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY clients ./clients
COPY modelreg_server ./modelreg_server
COPY tracking_service ./tracking_service
COPY registry_service ./registry_service
COPY mlflow_gateway ./mlflow_gateway
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./clients '.[postgres,mysql]'

FROM python:3.11-slim AS server
RUN useradd --system --uid 10001 --create-home --home-dir /home/modelreg modelreg
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'modelreg-server[postgres,mysql]' \
    && rm -rf /wheels
# The compose `certs` volume mounts here: a new volume takes this directory's owner.
RUN mkdir /certs && chown modelreg /certs
USER modelreg
WORKDIR /home/modelreg
ENV PYTHONUNBUFFERED=1
EXPOSE 50051 50052 9464 9465 5000
ENTRYPOINT ["python", "-m"]
CMD ["tracking_service", "serve"]
