"""The search index derived from the archive: passages (chunk), their embeddings
(encoders), FAISS vectors, the BM25 keyword index, per-resource vectors and the
manifest that ties them to one generation of the archive.
"""
