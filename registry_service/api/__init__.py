"""The gRPC face of the registry: the servicer and proto <-> entity conversion."""
