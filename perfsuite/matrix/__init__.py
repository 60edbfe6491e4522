"""The test matrix: a tier's TOML (bundled or a user's own with [[models]]) into Variants,
exclusions, relative bounds and shards; the cases pytest runs for a user matrix.
"""
