"""gRPC servicers: translate proto <-> domain and map errors to status codes."""
