"""The rules of the tracking service, free of gRPC and SQL: entities, validation, typed errors,
the MLflow filter grammar, and TrackingService, the use cases that apply them and call the stores."""
