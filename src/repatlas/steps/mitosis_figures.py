"""Figure steps of the representation-mitosis study (rules figure_mitosis, figure_mitosis_ensemble):
read chunk-metric .nc files or feature .npz files, draw, save PNG + PDF."""

from __future__ import annotations

import sys

import xarray as xr

from repatlas.data import load_npz
from repatlas.ensembles import ensemble_accuracy
from repatlas.mitosis import last_layer_units
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


def ensemble_accuracies(wide_path, member_paths, *, arch: str, wide_width: int, narrow_width: int) -> dict:
    """Test accuracy of the widest model, the narrow models (mean) and their ensemble (mean of
    probabilities), from the feature .npz files' test logits; keys label the bars."""
    wide, _ = load_npz(wide_path)
    members = [load_npz(path)[0] for path in member_paths]
    labels = wide["labels_test"]

    def name(width):
        return f"{arch} width {width}" + (f" ({last_layer_units(arch, width)} units)" if arch != "mlp" else "")

    return {
        name(wide_width): ensemble_accuracy([wide["logits_test"]], labels),
        f"{name(narrow_width)} (mean)": sum(ensemble_accuracy([m["logits_test"]], labels) for m in members)
        / len(members),
        f"ensemble of {len(members)} × width {narrow_width}": ensemble_accuracy([m["logits_test"] for m in members],
                                                                                labels),
    }


def ensemble_figure(wide_path, member_paths, out_paths, *, arch: str, wide_width: int, narrow_width: int,
                    title: str | None = None) -> None:
    """`ensemble_accuracies` (printed to stderr, the job's log) → `mitosis_ensemble_figure`."""
    accuracies = ensemble_accuracies(wide_path, member_paths, arch=arch, wide_width=wide_width,
                                     narrow_width=narrow_width)
    print(accuracies, file=sys.stderr)
    save_figure(mitosis.mitosis_ensemble_figure(accuracies, title=title), *out_paths)
