"""Versioned schema migrations of the PostgreSQL backend (SQLite's are in ``sqlite.py``).

A migration is never edited once released: a change of schema is a new entry at the end.
"""
