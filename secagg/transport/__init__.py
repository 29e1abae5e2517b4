"""Network transport for federations: gRPC with mutual TLS between the server and the branches."""

import os

# gRPC's C core logs every failed TLS handshake of a dial's retries at INFO on stderr
# (grpcio 1.85): noise beside the one line the transport's own error gives, with its
# cause. Set before grpc is first imported; an operator's own GRPC_VERBOSITY wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
