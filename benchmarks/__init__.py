"""Side-by-side benchmarks (SPEC section 5): `python -m benchmarks`, one module per workload."""
