"""Measuring one variant: batching with each padding strategy, the workload read once, timed passes
with the busy signals and memory beside them (runner), the typed Measurement, one variant over
several devices.
"""
