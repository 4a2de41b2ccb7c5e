"""The local LLM as judge and answerer, and the LLM endpoint every LLM benchmark shares."""
