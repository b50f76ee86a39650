"""The workshop: what the tests, the benches and `make run` share (the local
stack, the REST and gRPC client, lfw-dev data, the in-process recipe, the
ghz-compatible load driver, the GPU machine's kit). The product never imports it."""
