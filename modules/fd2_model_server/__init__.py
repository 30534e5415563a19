"""fd2's `model_server` module: the RAG devkit's model server (embeddings, rerank, classify)."""

from fd2_model_server.module import ModelServerModule

__all__ = ["ModelServerModule"]
