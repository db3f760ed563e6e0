"""Turning fetched bytes into main text: what the bytes are (sniff), how they decode
(charset), HTML, PDF and plain text, and the isolated worker processes that run them.

Pure: bytes in, an Extracted document out; no network, no archive.
"""
