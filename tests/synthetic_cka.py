"""Hand-made CKA heatmaps with planted blocks, shared by the block and figure tests."""

import numpy as np


def heatmap(n, planted, *, inside=0.95, outside=0.3):
    """Symmetric CKA-like matrix: `inside` within each planted (start, end) block, else `outside`."""
    k = np.full((n, n), outside)
    for start, end in planted:
        k[start : end + 1, start : end + 1] = inside
    np.fill_diagonal(k, 1.0)
    return k
