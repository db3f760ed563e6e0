"""Answers computed from the index: hybrid search, next-read suggestions, related items,
topic clusters with the section audit, and the collection map.
"""
