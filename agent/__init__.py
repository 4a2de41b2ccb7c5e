"""The agent layer: the `evolve` command line (agent/commands/, one module a command), the LangGraph loop
(agent/loop/), every file evolve keeps (agent/paths.py) and the one way to an LLM (agent/llm_session.py)."""
