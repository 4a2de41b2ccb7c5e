"""The agent layer: the `evolve` command line (the LangGraph loop lands here)."""
