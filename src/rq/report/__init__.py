"""Views of the archive for people: resource status and link health.
"""
