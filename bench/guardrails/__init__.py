"""The guard's promotion rule in simulation, and the guard/approve/serve/roll back flow on real data."""
