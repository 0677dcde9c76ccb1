# One image for both services and the MLflow REST endpoint. The build stage makes wheels of both distributions (generated gRPC
# code is already in the source tree, so nothing is generated here): the client from clients/, the
# server from the root with its database drivers. Naming ./clients lets pip take the server's
# `modelreg` requirement from the source tree; its sklearn extra is not asked for, so neither
# scikit-learn, pandas, SciPy, NumPy nor skops is built or installed. The final stage installs only
# the server distribution (which pulls in the client), has no compilers, runs as a non-root user
# and needs no network at start.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY clients ./clients
COPY modelreg_server ./modelreg_server
COPY tracking_service ./tracking_service
COPY registry_service ./registry_service
COPY mlflow_gateway ./mlflow_gateway
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./clients '.[postgres,mysql]'

FROM python:3.11-slim
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
