"""Retrieval stores other than the index directory (retrieval/store.py): Milvus."""
