"""Figure step of the widest model against an ensemble of narrow ones (rule figure_mitosis_ensemble):
read the feature .npz files, score the test logits, draw, save PNG + PDF."""

from __future__ import annotations

import sys

from repatlas.data import load_npz
from repatlas.ensembles import ensemble_accuracy
from repatlas.mitosis import last_layer_units
from repatlas.plots.common import save_figure
from repatlas.plots.mitosis import mitosis_ensemble_figure


def ensemble_accuracies(wide_path, member_paths, *, arch: str, wide_width: int, narrow_width: int) -> dict:
    """Test accuracy of the widest model, the narrow models (mean) and their ensemble (mean of
    probabilities), from the feature .npz files' test logits; keys label the bars."""
    wide, _ = load_npz(wide_path)
    members = [load_npz(path)[0] for path in member_paths]
    labels = wide["labels_test"]

    def name(width):
        return f"{arch} width {width}" + (f" ({last_layer_units(arch, width)} units)" if arch != "mlp"
                                          else "")

    return {
        name(wide_width): ensemble_accuracy([wide["logits_test"]], labels),
        f"{name(narrow_width)} (mean)": sum(ensemble_accuracy([m["logits_test"]], labels) for m in members)
        / len(members),
        f"ensemble of {len(members)} × width {narrow_width}": ensemble_accuracy(
            [m["logits_test"] for m in members], labels),
    }


def ensemble_figure(wide_path, member_paths, out_paths, *, arch: str, wide_width: int, narrow_width: int,
                    title: str | None = None) -> None:
    """`ensemble_accuracies` (printed to stderr, the job's log) → `mitosis_ensemble_figure`."""
    accuracies = ensemble_accuracies(wide_path, member_paths, arch=arch, wide_width=wide_width,
                                     narrow_width=narrow_width)
    print(accuracies, file=sys.stderr)
    save_figure(mitosis_ensemble_figure(accuracies, title=title), *out_paths)
