"""Judging: each bound kind's checks (checks) and one variant's measurement against its stored
records (verdict), per kind where its record is valid.
"""
