"""Fetching links politely and defensively (client) behind an address guard (netguard).

Every failure becomes a FetchResult; nothing here knows the archive or the queue.
"""
