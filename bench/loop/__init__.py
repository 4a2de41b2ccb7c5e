"""evolve's loop: replayed on the search grids, with the heuristic and the LLM proposer, and run for real."""
