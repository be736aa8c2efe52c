"""Figure steps of the representation-mitosis study (rule figure_mitosis): read the chunk-metric .nc
files, draw, save PNG + PDF. The ensemble figure's step is `mitosis_ensemble_figures` (it needs
repatlas.ensembles, and so torch: kept apart so these figures do not rerun when it changes)."""

from __future__ import annotations

import xarray as xr

from repatlas.plots import mitosis
from repatlas.plots.common import save_figure

# The rule names its figure by the builder's name ("mitosis_<name>_figure").
FIGURES = {f.__name__: f for f in (mitosis.mitosis_chunks_figure, mitosis.mitosis_clones_figure,
                                   mitosis.mitosis_training_figure)}


def mitosis_figure(figure: str, chunk_paths, cells, out_paths, *, title: str | None = None) -> None:
    """Chunk-metric .nc files (one per model, `cells[i]` = its arch/regime/width/seed) → the
    builder `figure` (a key of `FIGURES`) at each out path."""
    if figure not in FIGURES:
        raise ValueError(f"unknown mitosis figure {figure!r}; expected one of {sorted(FIGURES)}")
    datasets = [xr.load_dataset(path) for path in chunk_paths]
    save_figure(FIGURES[figure](datasets, list(cells), title=title), *out_paths)
