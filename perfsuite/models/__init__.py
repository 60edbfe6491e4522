"""Model specs (full-size configs and their shape-faithful tiny miniatures) and loading."""
