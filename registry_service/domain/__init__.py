"""Entities, errors and rules of the registry; no grpc, no SQL."""
