"""Everything rq keeps on disk for a queue: the SQLite archive, content-addressed raw
bodies, the writer lock, and the session that opens an archive for a queue and mirrors
the parsed queue into it.
"""
