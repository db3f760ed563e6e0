"""The reading queue itself: the Markdown file parsed into resources (model, parse, links,
urls), ids resolved from what a person types, and the one edit rq makes to the file (a checkbox).

Imports nothing of rq but the base modules (settings, errors, files, words).
"""
