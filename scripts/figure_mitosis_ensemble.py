import sys

from repatlas.data import load_npz
from repatlas.ensembles import ensemble_accuracy
from repatlas.joblog import log_to
from repatlas.mitosis import last_layer_units
from repatlas.plots import mitosis_ensemble_figure, save_figure

log_to(snakemake.log[0])
wide, _ = load_npz(snakemake.input.wide)
members = [load_npz(path)[0] for path in snakemake.input.members]
labels = wide["labels_test"]
p = snakemake.params


def name(width):
    return f"{p.arch} width {width}" + (f" ({last_layer_units(p.arch, width)} units)" if p.arch != "mlp" else "")


accuracies = {
    name(p.wide_width): ensemble_accuracy([wide["logits_test"]], labels),
    f"{name(p.narrow_width)} (mean)": sum(ensemble_accuracy([m["logits_test"]], labels) for m in members) / len(members),
    f"ensemble of {len(members)} × width {p.narrow_width}": ensemble_accuracy([m["logits_test"] for m in members], labels),
}
print(accuracies, file=sys.stderr)
save_figure(mitosis_ensemble_figure(accuracies, title=p.title), *snakemake.output)
