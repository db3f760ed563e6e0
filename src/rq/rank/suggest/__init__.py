"""What to read next, and what is related: per-request scorers over resource vectors, the
exemplar SVM, diversification, and the answers with their explanations.
"""
