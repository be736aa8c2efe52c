# Targets and settings of rules/complexity.smk (Neural Redshift) and of its figures (rules/figures.smk).


def redshift_results():
    """Every configured sweep (redshift.sweeps), the sum-mod-M experiment and the Chebyshev degree sensitivity."""
    return [f"results/complexity/{s}.nc" for s in REDSHIFT["sweeps"]] + [
        "results/complexity/summod.nc",
        "results/complexity/chebyshev_degrees.nc",
    ]


def redshift_figure_names():
    names = [f"redshift_{f}" for f in REDSHIFT_LINES] + [
        "redshift_functions",
        "redshift_summod",
        "redshift_chebyshev_degrees",
    ]
    names += (
        ["redshift_heatmap"] if "scale" in REDSHIFT["sweeps"] and "fourier" in REDSHIFT["measures"] else []
    )
    return names


# How each Neural Redshift measure samples a function (repatlas.complexity.MeasureSettings).
REDSHIFT_FOURIER = {k: REDSHIFT[k] for k in ("grid_size", "grid_endpoint", "fourier_convention")}
REDSHIFT_SETTINGS = {
    "measures": REDSHIFT["measures"],
    **REDSHIFT_FOURIER,
    **{k: REDSHIFT[k] for k in ("chebyshev_nodes", "chebyshev_degree", "lz_grid_size")},
}


def redshift_line_figures():
    """Line figures of the Neural Redshift study, each drawn from one named sweep."""
    sweeps = REDSHIFT["sweeps"]
    fixed = {"width": 64, "variant": "plain"}
    figures = {}
    if "scale" in sweeps:
        figures["scale"] = dict(
            col="measure",
            sweep="scale",
            x="scale",
            hue="activation",
            logx=True,
            select={**fixed, "depth": REDSHIFT["figure_depth"]},
            title=f"complexity vs weight magnitude, depth {REDSHIFT['figure_depth']}",
        )
        figures["depth"] = dict(
            col="measure",
            sweep="scale",
            x="depth",
            hue="activation",
            logx=False,
            select={**fixed, "scale": REDSHIFT["figure_scale"]},
            title=f"complexity vs depth, A ≈ {REDSHIFT['figure_scale']:g}",
        )
    if "width" in sweeps:
        figures["width"] = dict(
            col="measure",
            sweep="width",
            x="width",
            hue="activation",
            logx=True,
            select={
                "variant": "plain",
                "depth": sweeps["width"]["depth"][0],
                "scale": max(sweeps["width"]["scale"]),
            },
            title=f"complexity vs width, A = {max(sweeps['width']['scale']):g}",
        )
    if "variant" in sweeps:
        figures["variant"] = dict(
            sweep="variant",
            x="scale",
            hue="variant",
            col="activation",
            logx=True,
            select={"width": sweeps["variant"]["width"][0], "depth": sweeps["variant"]["depth"][0]},
            title="residual, LayerNorm and gating vs plain MLPs",
        )
    return figures


REDSHIFT_LINES = redshift_line_figures()
