"""`evolve ingest`: speed and recovered text on generated company files and on real files; the writers."""
