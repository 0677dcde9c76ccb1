"""The gRPC edge: the servicer and the proto <-> entity converters. The only package that imports
grpc or generated messages."""
