"""Network transport for federations: gRPC with mutual TLS between the server and the branches."""
