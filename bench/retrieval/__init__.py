"""Retrieval quality of fixed configs and of one tuned study per set."""
