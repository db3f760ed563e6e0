"""Queue -> fetch -> extract -> archive: the resumable pipeline, the soft-404 check and
the detection of pages that changed since they were read.
"""
