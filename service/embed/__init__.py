"""Embedders: one protocol, one module per implementation, the batcher and the factory."""
