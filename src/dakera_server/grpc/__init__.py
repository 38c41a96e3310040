"""gRPC transport: ``dakera.v1.VectorService`` (``vectors.proto``) over the same engine as REST."""
