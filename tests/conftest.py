"""Test-wide settings."""

import torch

# Tiny test workloads run fastest single-threaded; on a busy 2-core machine idle OpenMP threads
# spin and slow tests down more than tenfold. Tests that need threads set them explicitly.
torch.set_num_threads(1)
