"""Figures: seaborn grids of CKA heatmaps. Functions take data and return a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def cka_heatmap_grid(cells: pd.DataFrame, *, row: str, col: str, title: str | None = None,
                     xlabel: str = "layer", ylabel: str = "layer"):
    """A grid of CKA heatmaps: one facet per row of `cells`.

    `cells` has columns `row`, `col` and `cka` (an xarray.DataArray (layer_a, layer_b) each);
    layer_a runs up the y axis, layer_b along the x axis. All facets share one colour scale
    [0, 1] and one colourbar; layer 0 is at the bottom left, as in Nguyen et al.'s figures.
    """
    cells = cells.sort_values([row, col]).reset_index(drop=True)
    grid = sns.FacetGrid(cells, row=row, col=col, height=2.4, aspect=1.0, sharex=False,
                         sharey=False, despine=False)
    cbar_ax = grid.figure.add_axes([0.9, 0.3, 0.015, 0.4])

    def draw(data, **_):
        sns.heatmap(np.asarray(data["cka"].iloc[0])[::-1], ax=plt.gca(), vmin=0.0, vmax=1.0,
                    cmap="magma", square=True, cbar_ax=cbar_ax, xticklabels=False,
                    yticklabels=False)

    grid.map_dataframe(draw)
    grid.set_titles(template=f"{row} {{row_name}}, {col} {{col_name}}", size=9)
    grid.set_axis_labels(xlabel, ylabel)
    cbar_ax.set_ylabel("linear CKA (minibatch, unbiased)")
    # FacetGrid's own tight layout ignores the colourbar axes: make room for it afterwards.
    grid.figure.subplots_adjust(right=0.86)
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid.figure


def cka_grid_figure(nc_paths, cells, out_paths, *, row, col, title=None, xlabel="layer",
                    ylabel="layer") -> None:
    """The figure step: CKA .nc files + one facet label dict per file → heatmap grid files."""
    import xarray as xr

    rows = []
    for path, cell in zip(nc_paths, cells, strict=True):
        with xr.open_dataarray(path) as da:
            rows.append({**cell, "cka": da.load()})
    fig = cka_heatmap_grid(pd.DataFrame(rows), row=row, col=col, title=title, xlabel=xlabel,
                           ylabel=ylabel)
    save_figure(fig, *out_paths)


def save_figure(fig, *paths) -> None:
    """Save a figure to each path atomically (format from the suffix) and close it."""
    from repatlas.io import atomic_path

    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], bbox_inches="tight", dpi=150)
    plt.close(fig)



# ----------------------------------------------------------------------------- Neural Redshift


def _select(ds, select: dict | None):
    """Select coordinates: exact for strings, nearest for numbers (configs name rounded values)."""
    for dim, value in (select or {}).items():
        ds = ds.sel({dim: value}) if isinstance(value, str) else ds.sel({dim: value}, method="nearest")
    return ds


def complexity_lines(ds, *, x: str, hue: str, select: dict | None = None, col: str = "measure",
                     logx: bool = False, title: str | None = None):
    """Mean ± sd over seeds of each complexity measure against `x`, one line per `hue` value.

    Panels: one per measure; with `col` set to a dimension (e.g. "activation"), one column per
    value of it and one row per measure.
    `ds` is a (normalised) sweep from repatlas.redshift.complexity_sweep; every dimension other
    than x, hue, seed and (optionally) `col` must be fixed by `select` or have length 1.
    A dotted line at 1 marks the unbiased (white-noise) reference when the sweep is normalised.
    """
    ds = _select(ds, select)
    measures = [m for m in ("fourier", "chebyshev", "lz") if m in ds.data_vars]
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
    if ds.attrs.get("normalised"):
        grid.refline(y=1.0, linestyle=":", color="grey")
        grid.set_ylabels("complexity / unbiased")
    if title:
        grid.figure.suptitle(title, y=1.03)
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def summod_scatter(ds, *, title: str | None = None):
    """Sum-mod-M: test accuracy against Fourier complexity at initialisation, one panel per M."""
    df = ds[["test_accuracy", "init_fourier_complexity"]].to_dataframe().reset_index()
    grid = sns.relplot(data=df, x="init_fourier_complexity", y="test_accuracy", hue="activation",
                       size="alpha", col="M", height=3.0, aspect=1.0)
    grid.set_axis_labels("Fourier complexity at initialisation", "test accuracy")
    grid.refline(y=0.5, linestyle=":", color="grey")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


# ----------------------------------------------------------------------------- infinite width


def cookbook_figure(ds, *, title: str | None = None):
    """Finite GD-trained ensemble vs the infinite-width NTK: predictions at the last t, losses over t."""
    fig, (ax_f, ax_l) = plt.subplots(1, 2, figsize=(10, 3.6))
    last = ds.isel(t=-1)
    x = ds["x"].values
    ens_mean = last["f_test"].mean("member").values
    ens_sd = last["f_test"].std("member").values
    ax_f.fill_between(x, last["ntk_mean"] - 2 * last["ntk_sd"], last["ntk_mean"] + 2 * last["ntk_sd"],
                      color="C0", alpha=0.25, label="NTK mean ± 2σ")
    ax_f.plot(x, last["ntk_mean"], color="C0")
    ax_f.plot(x, ens_mean, color="C3", ls="--", label=f"ensemble of {ds.sizes['member']} (mean)")
    ax_f.plot(x, ens_mean - 2 * ens_sd, color="C3", ls=":", lw=1)
    ax_f.plot(x, ens_mean + 2 * ens_sd, color="C3", ls=":", lw=1, label="ensemble ± 2σ")
    ax_f.plot(x, ds["y_test"], color="grey", lw=0.8, label="sin x")
    ax_f.scatter(ds["x_train"], ds["y_train"], color="k", zorder=5, label="training points")
    ax_f.set(xlabel="x", ylabel="f(x)", title=f"t = {float(last['t']):g}")
    ax_f.legend(fontsize=7, loc="lower right")
    t = ds["t"].values[1:]  # log axis: skip t = 0
    for name, color in (("train", "C2"), ("test", "C1")):
        ax_l.plot(t, ds[f"{name}_loss"].mean("member").values[1:], color=color, ls="--",
                  label=f"{name}, ensemble")
        ax_l.plot(t, ds[f"predicted_{name}_loss"].values[1:], color=color, label=f"{name}, NTK")
    ax_l.set(xscale="log", yscale="log", xlabel="t (step × lr)", ylabel="loss 0.5 (f − y)²")
    ax_l.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def ntk_convergence_figure(ds, *, title: str | None = None):
    """‖Θ_emp − Θ‖/‖Θ‖ against width (mean ± sd over seeds) with a c/√width guide."""
    df = ds["relative_error"].to_dataframe().reset_index()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    sns.lineplot(data=df, x="width", y="relative_error", errorbar="sd", marker="o", ax=ax,
                 label="empirical vs analytic NTK")
    widths = ds["width"].values.astype(float)
    c = float(ds["relative_error"].mean("seed")[0]) * np.sqrt(widths[0])
    ax.plot(widths, c / np.sqrt(widths), ls=":", color="grey", label="∝ 1/√width")
    ax.set(xscale="log", yscale="log", xlabel="width", ylabel="relative Frobenius error")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def regression_figure(ds, *, title: str | None = None):
    """Test accuracy of finite networks vs width (raw and centred) against NTK/NNGP predictions."""
    df = ds["finite_accuracy"].to_dataframe().reset_index()
    df["network"] = df["centred"].map({0: "finite", 1: "finite, centred (f − f₀)"})
    fig, ax = plt.subplots(figsize=(5, 3.6))
    sns.lineplot(data=df, x="width", y="finite_accuracy", hue="network", errorbar="sd", marker="o", ax=ax)
    for key, style, label in (("ntk_t", "-", f"NTK at t = {ds.attrs['steps'] * ds.attrs['lr']:g}"),
                              ("ntk_inf", "--", "NTK, t = ∞"), ("nngp_inf", ":", "NNGP, t = ∞")):
        ax.axhline(float(ds[key]), color="k", ls=style, lw=1, label=label)
    ax.set(xscale="log", xlabel="width", ylabel="test accuracy")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- representation mitosis


def _chunk_frame(datasets, cells) -> pd.DataFrame:
    frames = []
    for ds, cell in zip(datasets, cells, strict=True):
        df = ds[["error_mean", "r2_mean", "residual_corr_mean"]].to_dataframe().reset_index()
        df["error_gap"] = df["error_mean"] - (1 - float(ds.attrs["test_accuracy"]))
        frames.append(df.assign(**cell))
    return pd.concat(frames, ignore_index=True)


def mitosis_chunks_figure(datasets, cells, *, title: str | None = None):
    """Per chunk size: error(chunk) − error(full layer), R² and residual correlation, per width."""
    df = _chunk_frame(datasets, cells)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    palette = sns.color_palette("viridis", df["width"].nunique())
    for ax, y, label in zip(axes, ("error_gap", "r2_mean", "residual_corr_mean"),
                            ("error(chunk) − error(full)", "R² of the full layer from the chunk",
                             "mean |residual correlation|")):
        sns.lineplot(data=df, x="chunk_size", y=y, hue="width", style="regime", palette=palette,
                     marker="o", markersize=3, ax=ax, legend=ax is axes[-1])
        ax.set(xscale="log", xlabel="chunk size (neurons)", ylabel=label)
    positive = df.loc[df["error_gap"] > 0, "chunk_size"]
    if len(positive):
        c = np.unique(df["chunk_size"])
        axes[0].plot(c, 0.12 / np.sqrt(c), ls=":", color="grey", label="0.12 / √chunk")
        axes[0].set_yscale("symlog", linthresh=1e-3)
        axes[0].legend(fontsize=7)
    axes[-1].legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def mitosis_clones_figure(datasets, cells, *, title: str | None = None):
    """Estimated number of clones (width ÷ critical chunk size) against width, per regime."""
    df = pd.DataFrame([{**cell, "clones": float(ds.attrs["clones"])} for ds, cell in zip(datasets, cells)])
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    sns.lineplot(data=df, x="width", y="clones", hue="regime", marker="o", errorbar="sd", ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="last hidden layer width", ylabel="clones (width / critical chunk)")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def mitosis_ensemble_figure(accuracies: dict, *, title: str | None = None):
    """Bars of test accuracy: {label: accuracy} (the widest model, narrow models, their ensemble)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    labels = list(accuracies)
    ax.bar(labels, [accuracies[k] for k in labels], color=sns.color_palette("deep", len(labels)))
    lo = min(accuracies.values())
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    for i, k in enumerate(labels):
        ax.text(i, accuracies[k] + 0.003, f"{accuracies[k]:.3f}", ha="center", fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.tick_params(axis="x", labelsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- ensembles and distillation


def ensembles_methods_figure(table: pd.DataFrame, *, title: str | None = None):
    """Test accuracy (mean ± sd over members) per method, regime (hue) and data (columns)."""
    grid = sns.catplot(data=table, x="method", y="test_acc_mean", hue="regime", col="data", kind="bar",
                       height=3.2, aspect=1.2, sharey=False, errorbar=None)
    for ax, (_, sub) in zip(grid.axes.flat, table.groupby("data", sort=False)):
        # seaborn orders bars method-major, regime-minor: place error bars on the bar centres
        for bar, (_, r) in zip(ax.patches, sub.sort_values(["regime", "method"], key=_order(sub)).iterrows()):
            if np.isfinite(r["test_acc_std"]):
                ax.errorbar(bar.get_x() + bar.get_width() / 2, r["test_acc_mean"], yerr=r["test_acc_std"],
                            color="k", capsize=2, lw=1)
        lo = sub["test_acc_mean"].min()
        ax.set_ylim(max(0.0, lo - 0.05), min(1.0, sub["test_acc_mean"].max() + 0.02))
    grid.set_axis_labels("", "test accuracy")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


def _order(sub):
    """Sort key reproducing seaborn's category order (first appearance) for regime and method."""
    orders = {c: {v: i for i, v in enumerate(dict.fromkeys(sub[c]))} for c in ("regime", "method")}
    return lambda col: col.map(orders[col.name])


def ensembles_size_figure(datasets: dict, *, title: str | None = None):
    """Test accuracy of an ensemble against its size, per data (columns) and regime (hue)."""
    rows = [{"data": d, "regime": r, "size": int(s), "test_acc": float(a)}
            for (d, r), ds in datasets.items()
            for s, a in zip(ds["size"].values, ds["ensemble_curve"].values)]
    grid = sns.relplot(data=pd.DataFrame(rows), x="size", y="test_acc", hue="regime", col="data",
                       kind="line", marker="o", height=3.0, facet_kws={"sharey": False})
    grid.set_axis_labels("ensemble size", "test accuracy")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


def ensembles_dropping_figure(datasets: dict, *, title: str | None = None):
    """Accuracy when a fraction of last-hidden-layer units is zeroed: members vs their ensemble."""
    rows = []
    for data, ds in datasets.items():
        for f in ds["fraction"].values:
            rows += [{"data": data, "fraction": float(f), "model": "single (each member)", "test_acc": float(a)}
                     for a in ds["single"].sel(fraction=f).values]
            rows.append({"data": data, "fraction": float(f), "model": "ensemble of the dropped members",
                         "test_acc": float(ds["ensemble"].sel(fraction=f))})
    grid = sns.relplot(data=pd.DataFrame(rows), x="fraction", y="test_acc", hue="model", col="data",
                       kind="line", marker="o", errorbar="sd", height=3.0, facet_kws={"sharey": False})
    grid.set_axis_labels("fraction of units dropped", "test accuracy")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure
