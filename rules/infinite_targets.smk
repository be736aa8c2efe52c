# Targets of rules/infinite.smk (infinite width) and of its figures (rules/figures.smk).


def infinite_results():
    """The data file of every infinite-width figure."""
    return [f["data"] for f in INFINITE_FIGURES.values()]


def infinite_figure_names():
    return [f"infinite_{f}" for f in INFINITE_FIGURES]


def infinite_figures():
    """Figures of the infinite-width study: name → data file, drawing function, title."""
    c, reg = INFINITE["cookbook"], INFINITE["regression"]
    figures = {
        f"cookbook_{a}": dict(
            data=f"results/infinite/cookbook-{a}.nc",
            figure="cookbook_figure",
            title=f"{a}, width {c['width']}, {c['activation']}: finite ensemble vs infinite width",
        )
        for a in INFINITE["architectures"]
    }
    figures["ntk_convergence"] = dict(
        data="results/infinite/ntk_convergence.nc",
        figure="ntk_convergence_figure",
        title=f"empirical NTK → analytic NTK ({INFINITE['ntk']['activation']}, depth {INFINITE['ntk']['depth']})",
    )
    figures["regression"] = dict(
        data=f"results/infinite/regression-{config['dataset']}-n{reg['n_train']}.nc",
        figure="regression_figure",
        title=f"{config['dataset']}, n = {reg['n_train']}: kernel regression vs finite networks",
    )
    figures["cookbook_gap"] = dict(
        data="results/infinite/cookbook_gap.nc",
        figure="cookbook_gap_figure",
        title=f"cookbook ({c['activation']}, depth {c['depth']}, t = {c['steps'] * c['lr']:g}): "
        "finite-ensemble mean − NTK mean",
    )
    conv = INFINITE["conv"]
    figures["conv_regression"] = dict(
        data=conv_regression_file(),
        figure="conv_regression_figure",
        title=f"{conv_dataset()} (pooled {conv['pool']}×{conv['pool']}), "
        f"{conv['n_test']} test images: FC vs conv-GAP kernels, depth {conv['depth']}, "
        f"{conv['activation']}",
    )
    return figures


def conv_dataset():
    return INFINITE["conv"]["dataset"] or config["dataset"]


def conv_regression_file():
    return f"results/infinite/conv_regression-{conv_dataset()}-n{max(INFINITE['conv']['n_trains'])}.nc"


INFINITE_FIGURES = infinite_figures()
