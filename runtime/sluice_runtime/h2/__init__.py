"""HTTP/2 framing (RFC 9113) for the gRPC transport: pure functions, no I/O."""
