"""Serving: requests per second, the feedback snapshot's stall, embeddings behind a server."""
