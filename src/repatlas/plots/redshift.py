"""Neural Redshift figures: complexity against weight magnitude, depth, width and variant; heatmaps
of complexity over magnitude × depth; Chebyshev degree sensitivity; images of random functions;
sum-mod-M accuracy against the target's complexity."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from repatlas.plots.common import figure_title


def _select(ds, select: dict | None):
    """Select coordinates: exact for strings, nearest for numbers (configs name rounded values)."""
    for dim, value in (select or {}).items():
        ds = ds.sel({dim: value}) if isinstance(value, str) else ds.sel({dim: value}, method="nearest")
    return ds


_MEASURE_LABELS = {"fourier": "Fourier", "chebyshev": "Chebyshev", "lz": "Lempel-Ziv"}


def complexity_lines(ds, *, x: str, hue: str, select: dict | None = None, col: str = "measure",
                     logx: bool = False, title: str | None = None, reference: dict | None = None):
    """Mean ± sd over seeds of each complexity measure against `x`, one line per `hue` value.

    Panels: one per measure, titled with the measure's description (its ``description`` attr:
    measure, convention and sample grid); with `col` set to a dimension (e.g. "activation"), one
    column per value of it and one row per measure.
    `ds` is a sweep from repatlas.redshift.complexity_sweep; every dimension other than x, hue,
    seed and (optionally) `col` must be fixed by `select` or have length 1. `reference`
    ({measure: value}, default the measures' ``unbiased_reference`` attrs when present) is drawn
    as a dotted line: the unbiased (white-noise) model's level.
    """
    ds = _select(ds, select)
    measures = [m for m in ("fourier", "chebyshev", "lz") if m in ds.data_vars]
    if reference is None:
        reference = {m: ds[m].attrs["unbiased_reference"] for m in measures
                     if "unbiased_reference" in ds[m].attrs}
    long = (
        ds[measures].to_dataframe().reset_index()
        .melt(id_vars=[d for d in ds[measures[0]].dims], value_vars=measures, var_name="measure",
              value_name="complexity")
    )
    extra = [d for d in ds[measures[0]].dims if d not in (x, hue, "seed", col) and ds.sizes[d] > 1]
    if extra:
        raise ValueError(f"dimensions {extra} vary; fix them with select={{...}}")
    row = None if col == "measure" else "measure"  # measures go in rows when columns are taken
    grid = sns.relplot(data=long, x=x, y="complexity", hue=hue, col=col, row=row, kind="line",
                       errorbar="sd", marker="o", markersize=4, height=3.0, aspect=1.1,
                       facet_kws={"sharey": False})
    if logx:
        grid.set(xscale="log")
    for key, ax in grid.axes_dict.items():
        m = key if col == "measure" else key[0]
        if m in reference:
            ax.axhline(reference[m], linestyle=":", color="grey")
        label = _MEASURE_LABELS[m] + (" (paper)"
                                      if m == "fourier" and "paper" in ds[m].attrs.get("description", "")
                                      else "")
        ax.set_ylabel(label)
        if col == "measure":
            ax.set_title(textwrap.fill(ds[m].attrs.get("description", m), 45), fontsize=7)
    if ds.attrs.get("normalised"):
        grid.set_ylabels("complexity / unbiased")
    if title:
        figure_title(grid.figure, title + ("   (dotted: unbiased white-noise model)" if reference else ""),
                     above=True)
    return grid.figure


def complexity_heatmaps(ds, *, measure: str = "fourier", select: dict | None = None, title: str | None = None,
                        vmax: float | None = None):
    """Seed-mean complexity over weight magnitude A (rows) x depth (columns), one panel per activation.

    The layout of the co-author code's heatmaps (ArmandNM/neural-redshift, ``draw_mean_freqs``:
    depth along x, A down y, "Spectral" colours from 0). The colour scale tops out at `vmax`,
    default the measure's ``unbiased_reference`` attr (white noise) or the data's maximum.
    """
    da = _select(ds, select)[measure]
    extra = [d for d in da.dims if d not in ("activation", "scale", "depth", "seed") and da.sizes[d] > 1]
    if extra:
        raise ValueError(f"dimensions {extra} vary; fix them with select={{...}}")
    da = da.mean("seed").squeeze(drop=True)
    vmax = vmax or da.attrs.get("unbiased_reference") or float(da.max())
    acts = list(da.activation.values)
    ncol = min(4, len(acts))
    nrow = -(-len(acts) // ncol)
    fig, axes = plt.subplots(nrow, ncol, squeeze=False, figsize=(2.2 * ncol + 1.2, 3.0 * nrow + 0.6),
                             sharex=True, sharey=True, layout="constrained")
    for ax, a in zip(axes.flat, acts):
        img = ax.imshow(da.sel(activation=a).transpose("scale", "depth").values, cmap="Spectral", vmin=0,
                        vmax=vmax, aspect="auto", interpolation="none")
        ax.set_title(a, fontsize=9)
        ax.set_xticks(range(da.sizes["depth"]), [str(d) for d in da.depth.values], fontsize=7)
        ax.set_yticks(range(da.sizes["scale"]), [f"{A:.3g}" for A in da.scale.values], fontsize=6)
    for ax in axes.flat[len(acts):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("hidden layers")
    for ax in axes[:, 0]:
        ax.set_ylabel("weight magnitude A")
    fig.colorbar(img, ax=axes, shrink=0.8, label=textwrap.fill(da.attrs.get("description", measure), 40))
    if title:
        figure_title(fig, title)
    return fig


def chebyshev_degrees_figure(ds, *, title: str | None = None):
    """Chebyshev complexity against its maximum degree D: one panel per activation, one line per
    weight magnitude A (mean ± sd over seeds), white noise at each D dashed."""
    df = ds["chebyshev"].to_dataframe().reset_index()
    grid = sns.relplot(data=df, x="degree", y="chebyshev", hue="scale", col="activation", kind="line",
                       errorbar="sd", marker="o", height=3.0, aspect=1.0, palette="viridis")
    for ax in grid.axes.flat:
        ax.plot(ds.degree.values, ds.unbiased.values, "k--", lw=1, label="white noise")
    grid.set_axis_labels("maximum degree D", "Chebyshev complexity")
    if title:
        figure_title(grid.figure, title, above=True)
    return grid.figure


def function_panel(values, *, title: str | None = None):
    """Images of 2-D functions: `values` is a DataArray (row, col, x, y) → one image per cell."""
    rows, cols = values.dims[:2]
    fig, axes = plt.subplots(values.sizes[rows], values.sizes[cols], squeeze=False,
                             figsize=(1.6 * values.sizes[cols], 1.6 * values.sizes[rows]))
    for i, r in enumerate(values[rows].values):
        for j, c in enumerate(values[cols].values):
            ax = axes[i, j]
            # values[i, j] = f(x_i, y_j): x runs along the image's horizontal axis
            ax.imshow(np.asarray(values.sel({rows: r, cols: c})).T, origin="lower", cmap="viridis",
                      extent=(-1, 1, -1, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{cols} {c:g}" if isinstance(c, (float, np.floating)) else f"{c}", fontsize=8)
            if j == 0:
                ax.set_ylabel(str(r), fontsize=8)
    figure_title(fig, title)
    fig.tight_layout()
    return fig


def summod_scatter(ds, *, title: str | None = None):
    """Sum-mod-M: test accuracy against the *target's* own Fourier complexity (one point per M,
    so harder targets lie further right), one panel per activation, one line per prefactor α
    (mean ± sd over seeds); the legend gives each α's mean complexity at initialisation."""
    df = ds[["test_accuracy", "init_fourier_complexity"]].to_dataframe().reset_index()
    target = ds["target_fourier_complexity"].to_series()
    df["target complexity"] = df["M"].map(target)
    init = df.groupby(["activation", "alpha"])["init_fourier_complexity"].mean()
    df["prefactor"] = [f"α={a:g}" for a in df["alpha"]]
    grid = sns.relplot(data=df, x="target complexity", y="test_accuracy", hue="prefactor", col="activation",
                       kind="line", errorbar="sd", marker="o", height=3.0, aspect=1.0)
    ticks = sorted(target.items(), key=lambda kv: kv[1])
    for a, ax in grid.axes_dict.items():
        ax.set_xticks([t for _, t in ticks], [f"{t:.2f}\nM={m}" for m, t in ticks], fontsize=7)
        ax.axhline(0.5, linestyle=":", color="grey")
        inits = ", ".join(f"α={al:g}: {init[(a, al)]:.2f}" for al in ds.alpha.values)
        ax.set_title(f"{a}\ninit complexity {inits}", fontsize=7)
    grid.set_axis_labels("target's complexity (Fourier)", "test accuracy")
    if title:
        figure_title(grid.figure, title, above=True)
    return grid.figure


