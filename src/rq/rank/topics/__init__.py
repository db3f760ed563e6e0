"""Topics: clusters of the collection, their names, the audit of the queue's own sections
against them, and the 2-D map.
"""
