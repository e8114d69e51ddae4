"""geomtoy's speed benchmark against the paper notebook's PyTorch loop (see run.py)."""
