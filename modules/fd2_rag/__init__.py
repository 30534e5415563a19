"""fd2's `rag_service` module: a RAG devkit service (query, retrieve, chat) behind fd2."""

from fd2_rag.module import RagServiceModule

__all__ = ["RagServiceModule"]
