"""Hyper-parameter search: an exhaustive grid, and search methods replayed against it at equal compute."""
