"""HTTP/2 framing (RFC 9113) and HPACK decoding (RFC 7541) for gRPC: pure code, no I/O."""
