"""Side-by-side benchmarks of ritz against NumPy, hand-written Numba/CUDA and Devito.

Run ``python -m benchmarks`` (``--quick`` for a smoke run, ``--gpu`` for the GPU suite).
"""
