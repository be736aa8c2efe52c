# Targets and input functions of rules/mitosis.smk (representation mitosis) and of its figures.
# A training run is stored at results/mitosis/models/<MODEL_PATH>; each model analysed (the run's
# final weights or one of its snapshots) at <MITOSIS_MODEL_PATH> below results/mitosis/{features,chunks}.


def mitosis_results():
    """The clone analysis of every model of the sweep and the summary over them."""
    return [f"results/mitosis/chunks/{m}.nc" for m in mitosis_models()] + ["results/mitosis/summary.csv"]


def mitosis_figure_names():
    return ["mitosis_chunks", "mitosis_clones", "mitosis_training", "mitosis_ensemble"]


def mitosis_regimes(arch):
    return ["converged"] + [f"epoch{e}" for e in sorted(MITOSIS["archs"][arch]["early_epochs"])]


def mitosis_sweep(archs=None, regimes=None, widths=None, seeds=None):
    """One record per model of the mitosis sweep: arch, depth, width, regime, seed and `model`, its
    id below results/mitosis/{features,chunks}. `regimes` defaults to every regime of each arch;
    `widths` (the arch's width unit) makes sense with one arch."""
    out = []
    for a in archs or MITOSIS["archs"]:
        for r in regimes or mitosis_regimes(a):
            for w in widths or MITOSIS["archs"][a]["widths"]:
                for s in seeds or MITOSIS["seeds"]:
                    cell = {
                        "arch": a,
                        "depth": MITOSIS["archs"][a]["depth"],
                        "width": w,
                        "regime": r,
                        "seed": s,
                    }
                    out.append(
                        {
                            **cell,
                            "model": MITOSIS_MODEL_PATH.format(
                                dataset=config["dataset"], n=MITOSIS["n"], **cell
                            ),
                        }
                    )
    return out


def mitosis_models(**selection):
    return [cell["model"] for cell in mitosis_sweep(**selection)]


def mitosis_train_settings(wildcards):
    """TrainConfig fields of one mitosis run: its arch's settings."""
    a = MITOSIS["archs"][wildcards.arch]
    return {k: a[k] for k in ("epochs", "batch_size", "lr", "weight_decay", "crop_pad", "flip")}


def mitosis_weights(wildcards):
    """The weights a mitosis model is read from: its run's model.pt ("converged") or the run's
    snapshots folder ("epoch<E>", with mitosis_epoch naming the snapshot inside)."""
    run = f"results/mitosis/models/{MODEL_PATH.format(**wildcards)}"
    return f"{run}/model.pt" if wildcards.regime == "converged" else f"{run}/snapshots"


def mitosis_epoch(wildcards):
    return None if wildcards.regime == "converged" else int(wildcards.regime.removeprefix("epoch"))


def mitosis_figure_cells(wildcards):
    """The width figures show the converged models; the training figure every snapshot too."""
    return mitosis_sweep(regimes=("converged",) if wildcards.name != "training" else None)


def mitosis_ensemble_members():
    e = MITOSIS["ensemble"]
    return mitosis_models(
        archs=[e["arch"]], regimes=("converged",), widths=[e["width"]], seeds=list(range(e["members"]))
    )


def mitosis_ensemble_wide():
    """The widest converged model (first seed) of the ensemble's arch."""
    arch = MITOSIS["ensemble"]["arch"]
    return mitosis_models(
        archs=[arch],
        regimes=("converged",),
        widths=[max(MITOSIS["archs"][arch]["widths"])],
        seeds=[MITOSIS["seeds"][0]],
    )[0]
