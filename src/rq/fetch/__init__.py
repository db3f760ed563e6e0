"""Fetching links politely and defensively (client) behind an address guard (netguard):
bodies read with a memory bound (decoders), failures named (failures), a few requests
per host at a time (hosts), and the origin and host of a URL (urls).

Every failure becomes a FetchResult; nothing here knows the archive or the queue.
"""
