"""The tracking service's domain, free of gRPC and SQL: entities, validation rules, typed errors,
the search fields it declares over the shared grammar (modelreg_server.filters), and
TrackingService, the use cases that apply them and call the store and the artifact store through
their Protocols."""
