"""Stored records: names that become paths, the typed portable and machine records, and the
baseline store (atomic, locked, never another machine's).
"""
