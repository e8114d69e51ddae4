"""Results directories: the tables a run writes and everything that reads them (no JAX).

store (atomic writes, block files, assembly, reading back), integrity (checksums, bounded
and validated readers), frames (geomtoy.open / Results: pandas and xarray views), export
(safetensors for PyTorch tools).
"""
