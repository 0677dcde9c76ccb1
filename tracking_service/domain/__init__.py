"""The rules of the tracking service, free of gRPC and SQL: entities, validation, typed errors,
the MLflow filter grammar, and artifact path rules plus the upload/download orchestration."""
