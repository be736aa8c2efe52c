"""Figures: seaborn grids of CKA heatmaps. Functions take data and return a matplotlib Figure."""

from __future__ import annotations

import textwrap

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
    An optional column `blocks` ((start, end) layer-index pairs per facet, e.g. from
    `repatlas.blocks.model_blocks`) outlines the blocks in cyan and adds their count and the
    largest block's share of the layers to the facet title.
    """
    from matplotlib.patches import Rectangle

    cells = cells.sort_values([row, col]).reset_index(drop=True)
    grid = sns.FacetGrid(cells, row=row, col=col, height=2.4, aspect=1.0, sharex=False,
                         sharey=False, despine=False)
    cbar_ax = grid.figure.add_axes([0.9, 0.3, 0.015, 0.4])

    def draw(data, **_):
        values = np.asarray(data["cka"].iloc[0])
        sns.heatmap(values[::-1], ax=plt.gca(), vmin=0.0, vmax=1.0,
                    cmap="magma", square=True, cbar_ax=cbar_ax, xticklabels=False,
                    yticklabels=False)
        n = len(values)
        for start, end in data["blocks"].iloc[0] if "blocks" in data else ():  # row i drawn at n − 1 − i
            plt.gca().add_patch(Rectangle((start, n - 1 - end), end - start + 1, end - start + 1, fill=False,
                                          edgecolor="cyan", linewidth=1.2, gid="block"))

    grid.map_dataframe(draw)
    grid.set_titles(template=f"{row} {{row_name}}, {col} {{col_name}}", size=9)
    if "blocks" in cells:
        for _, cell in cells.iterrows():
            ax = grid.axes_dict[(cell[row], cell[col])]
            n, spans = len(np.asarray(cell["cka"])), list(cell["blocks"])
            largest = max((e - s + 1 for s, e in spans), default=0)
            ax.set_title(f"{ax.get_title()}\n{len(spans)} block(s), largest {largest}/{n} layers", size=8)
    grid.set_axis_labels(xlabel, ylabel)
    cbar_ax.set_ylabel("linear CKA (minibatch, unbiased)")
    # FacetGrid's own tight layout ignores the colourbar axes: make room for it afterwards.
    grid.figure.subplots_adjust(right=0.86)
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid.figure


def cka_grid_figure(nc_paths, cells, out_paths, *, row, col, title=None, xlabel="layer",
                    ylabel="layer", first_pc_paths=None, threshold: float = 0.9, min_length: int = 3,
                    min_pc1_share: float = 0.5) -> None:
    """The figure step: CKA .nc files + one facet label dict per file → heatmap grid files.

    With `first_pc_paths` (one first-PC .nc per within-model CKA file) each facet outlines the
    blocks of `repatlas.blocks.model_blocks` (the block table's) and counts them in its title.
    """
    import xarray as xr

    from repatlas.blocks import model_blocks

    first_pc = [None] * len(nc_paths) if first_pc_paths is None else list(first_pc_paths)
    rows = []
    for path, cell, pc_path in zip(nc_paths, cells, first_pc, strict=True):
        with xr.open_dataarray(path) as da:
            rows.append({**cell, "cka": da.load()})
        if pc_path is not None:
            rows[-1]["blocks"] = model_blocks(rows[-1]["cka"], xr.load_dataset(pc_path), threshold=threshold,
                                              min_length=min_length, min_pc1_share=min_pc1_share,
                                              source=f"{path} (for {pc_path})")
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
        reference = {m: ds[m].attrs["unbiased_reference"] for m in measures if "unbiased_reference" in ds[m].attrs}
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
        label = _MEASURE_LABELS[m] + (" (paper)" if m == "fourier" and "paper" in ds[m].attrs.get("description", "") else "")
        ax.set_ylabel(label)
        if col == "measure":
            ax.set_title(textwrap.fill(ds[m].attrs.get("description", m), 45), fontsize=7)
    if ds.attrs.get("normalised"):
        grid.set_ylabels("complexity / unbiased")
    if title:
        grid.figure.suptitle(title + ("   (dotted: unbiased white-noise model)" if reference else ""), y=1.08)
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
    fig, axes = plt.subplots(nrow, ncol, squeeze=False, figsize=(2.2 * ncol + 1.2, 3.0 * nrow + 0.6), sharex=True,
                             sharey=True, layout="constrained")
    for ax, a in zip(axes.flat, acts):
        img = ax.imshow(da.sel(activation=a).transpose("scale", "depth").values, cmap="Spectral", vmin=0, vmax=vmax,
                        aspect="auto", interpolation="none")
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
        fig.suptitle(title)
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
        grid.figure.suptitle(title, y=1.05)
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


def cookbook_gap_figure(ds, *, title: str | None = None):
    """Debiased rms gap (finite-ensemble mean − NTK mean) against width, ± 1 standard error, with
    the fitted power law, a 1/width line through the fit at the smallest width and the noise level
    (rms standard error of the ensemble mean) the gap was measured against."""
    fig, ax = plt.subplots(figsize=(5, 3.8))
    w = ds["width"].values.astype(float)
    g, g2, g2_se = ds["gap"].values, ds["gap2"].values, ds["gap2_se"].values
    lo = np.sqrt(np.clip(g2 - g2_se, 0, None))  # ±1 SE of gap², mapped through the square root
    hi = np.sqrt(np.clip(g2 + g2_se, 0, None))
    ok = g > 0
    ax.errorbar(w[ok], g[ok], yerr=[g[ok] - lo[ok], hi[ok] - g[ok]], fmt="o", color="C0", capsize=3,
                label="gap (debiased) ± 1 SE")
    for wi, h in zip(w[~ok], hi[~ok]):  # debiased gap² ≤ 0: only an upper bound
        ax.plot([wi], [h], marker="v", color="C0", ls="none")
    ax.plot(w, ds["noise_rms"].values, "x", color="grey", label="rms SE of the ensemble mean")
    if "exponent" in ds.attrs:
        a, p, se = ds.attrs["amplitude"], ds.attrs["exponent"], ds.attrs["exponent_se"]
        grid = np.geomspace(w.min(), w.max(), 50)
        ax.plot(grid, np.sqrt(a) * grid**-p, color="C0", lw=1, label=f"fit: width^-({p:.2f} ± {se:.2f})")
        ax.plot(grid, np.sqrt(a) * w.min() ** -p * (w.min() / grid), ls=":", color="k", lw=1, label="∝ 1/width")
    ax.set(xscale="log", yscale="log", xlabel="hidden width", ylabel="rms(ensemble mean − NTK mean)")
    ax.set_xticks(w)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def conv_regression_figure(ds, *, title: str | None = None):
    """Test accuracy of NNGP/NTK kernel regression against training-set size: FC vs conv-GAP kernels
    (left), and the paired difference conv − FC ± 2 standard errors (right)."""
    fig, (ax_a, ax_d) = plt.subplots(1, 2, figsize=(10, 3.6))
    n = ds["n_train"].values
    for arch, color in (("fc", "C0"), ("conv", "C3")):
        for kind, style in (("nngp", "--"), ("ntk", "-")):
            ax_a.plot(n, ds["accuracy"].sel(architecture=arch, kernel=kind), ls=style, marker="o", color=color,
                      label=f"{arch}, {kind.upper()}")
    ax_a.set(xscale="log", xlabel="training images", ylabel="test accuracy")
    ax_a.legend(fontsize=7)
    for kind, style, shift in (("nngp", "--", 0.97), ("ntk", "-", 1.03)):
        d, se = ds["conv_minus_fc"].sel(kernel=kind), ds["conv_minus_fc_se"].sel(kernel=kind)
        ax_d.errorbar(n * shift, d, yerr=2 * se, ls=style, marker="o", capsize=3, color="k", label=kind.upper())
    ax_d.axhline(0, color="grey", lw=0.8)
    ax_d.set(xscale="log", xlabel="training images", ylabel="accuracy(conv) − accuracy(FC), ± 2 SE")
    ax_d.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- representation mitosis


def _chunk_frame(datasets, cells) -> pd.DataFrame:
    """Long table of chunk metrics; ``units`` (last-hidden-layer width) comes from each Dataset's
    attrs, ``arch`` defaults to "mlp" for cells without one."""
    frames = []
    for ds, cell in zip(datasets, cells, strict=True):
        names = ["error_mean", "r2_mean", "residual_corr_mean"]
        names += [v for v in ("r2_heldout_mean",) if v in ds.data_vars]
        df = ds[names].to_dataframe().reset_index()
        df["error_gap"] = df["error_mean"] - (1 - float(ds.attrs["test_accuracy"]))
        frames.append(df.assign(**{"arch": "mlp", **cell, "units": int(ds.attrs["width"])}))
    return pd.concat(frames, ignore_index=True)


def _units_palette(units) -> dict:
    """One colour per last-hidden-layer width, log-spaced, shared by every architecture."""
    units = sorted(set(int(u) for u in units))
    return dict(zip(units, sns.color_palette("viridis", len(units))))


def mitosis_chunks_figure(datasets, cells, *, title: str | None = None):
    """Per chunk size: error(chunk) − error(full layer), R² and residual correlation; one row per
    architecture, colour = last-hidden-layer width (units), line style = regime."""
    df = _chunk_frame(datasets, cells)
    archs = list(dict.fromkeys(df["arch"]))
    fig, axes = plt.subplots(len(archs), 3, figsize=(13, 3.4 * len(archs)), squeeze=False)
    palette = _units_palette(df["units"])
    c = np.unique(df["chunk_size"])
    for row, arch in zip(axes, archs):
        sub = df[df["arch"] == arch]
        for ax, y, label in zip(row, ("error_gap", "r2_mean", "residual_corr_mean"),
                                ("error(chunk) − error(full)", "R² of the full layer from the chunk",
                                 "mean |residual correlation|")):
            sns.lineplot(data=sub, x="chunk_size", y=y, hue="units", style="regime", palette=palette,
                         hue_order=[u for u in palette if u in set(sub["units"])],
                         marker="o", markersize=3, ax=ax, legend=ax is row[-1])
            if y == "r2_mean" and "r2_heldout_mean" in sub:  # held-out R², dashed, same colours
                for u, g in sub.groupby("units"):
                    ax.plot(g["chunk_size"], g["r2_heldout_mean"], ls="--", lw=0.8, color=palette[u])
                ax.set_ylim(max(-0.1, ax.get_ylim()[0]), 1.02)
                label = "R² of the layer from the chunk\n(solid: in-sample, dashed: held out)"
            ax.set(xscale="log", xlabel="chunk size (neurons)", ylabel=label)
        row[0].set_title(arch, fontsize=9, loc="left")
        if (sub["error_gap"] > 0).any():
            row[0].plot(c, 0.12 / np.sqrt(c), ls=":", color="grey", label="0.12 / √chunk")
            row[0].set_yscale("symlog", linthresh=1e-3)
            row[0].legend(fontsize=7)
        row[-1].legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left", title="units / regime",
                       title_fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def mitosis_clones_figure(datasets, cells, *, title: str | None = None):
    """Estimated clones (width ÷ critical chunk size) against last-hidden-layer width (units);
    colour = architecture, line style = regime, mean ± sd over seeds, with a grey ∝ width guide;
    shaded: the range over the stored R² thresholds, dashed: the held-out R² estimate."""
    df = pd.DataFrame([{"arch": "mlp", **cell, "units": int(ds.attrs["width"]), "clones": float(ds.attrs["clones"])}
                       for ds, cell in zip(datasets, cells, strict=True)])
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    sns.lineplot(data=df, x="units", y="clones", hue="arch", style="regime", marker="o", errorbar="sd", ax=ax)
    _threshold_band(ax, datasets, cells)
    ok = df[np.isfinite(df["clones"]) & (df["clones"] > 0)]
    if len(ok):
        u = np.unique(ok["units"]).astype(float)
        scale = np.exp(np.mean(np.log(ok["clones"]) - np.log(ok["units"])))  # geometric-mean anchor
        ax.plot(u, scale * u, ls=":", color="grey", label="∝ width")
        ax.legend(fontsize=7)
    ax.set(xscale="log", yscale="log", xlabel="last hidden layer width (units)",
           ylabel="clones (width / critical chunk)")
    ax.set_xticks(sorted(set(df["units"])))  # label the swept widths, not log-scale minor ticks
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _clones_at(ds, r2: str, threshold: float) -> float:
    """Clones of a chunk-metrics Dataset for one R² kind and threshold (NaN if not stored)."""
    if "clones" not in ds.data_vars:
        return float("nan")
    thresholds = ds["threshold"].values
    if not np.any(np.isclose(thresholds, threshold)):
        return float("nan")
    return float(ds["clones"].sel(r2=r2, threshold=thresholds[np.isclose(thresholds, threshold)][0]))


def _threshold_band(ax, datasets, cells) -> None:
    """Shade, per architecture, the clone counts between the lowest and highest stored R² threshold
    (in-sample), and draw the held-out R² estimate at the primary threshold dashed."""
    rows = []
    for ds, cell in zip(datasets, cells, strict=True):
        if "clones" not in ds.data_vars:
            continue
        c = ds["clones"].sel(r2="in_sample").values
        rows.append({"arch": cell.get("arch", "mlp"), "units": int(ds.attrs["width"]), "lo": np.nanmin(c),
                     "hi": np.nanmax(c), "heldout": _clones_at(ds, "heldout", float(ds.attrs["r2_threshold"]))})
    if not rows:
        return
    df = pd.DataFrame(rows).groupby(["arch", "units"]).mean().reset_index()
    for i, (arch, g) in enumerate(df.groupby("arch", sort=False)):
        color = f"C{i}"
        ax.fill_between(g["units"], g["lo"], g["hi"], color=color, alpha=0.15, lw=0)
        ax.plot(g["units"], g["heldout"], ls="--", color=color, lw=1, label=f"{arch}, held-out R²")


def mitosis_training_figure(datasets, cells, *, title: str | None = None):
    """Clones against training error along each run: one panel per architecture, one line per
    width (colour = last-hidden-layer units) through its snapshots (in epoch order) to the
    converged model (star). Training error = 1 − accuracy on the training subset, eval mode."""
    rows = [{"arch": "mlp", **cell, "units": int(ds.attrs["width"]), "clones": float(ds.attrs["clones"]),
             "train_error": 1.0 - float(ds.attrs["train_accuracy"]), "epoch": int(ds.attrs.get("epoch", -1))}
            for ds, cell in zip(datasets, cells, strict=True)]
    df = pd.DataFrame(rows)
    archs = list(dict.fromkeys(df["arch"]))
    palette = _units_palette(df["units"])
    fig, axes = plt.subplots(1, len(archs), figsize=(5.2 * len(archs), 3.9), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        sub = df[df["arch"] == arch]
        for u, g in sub.groupby("units"):
            g = g.sort_values("epoch")
            ax.plot(g["train_error"], g["clones"], marker="o", ms=3, color=palette[u], label=f"{u} units")
            conv = g[g["regime"] == "converged"]
            ax.plot(conv["train_error"], conv["clones"], marker="*", ms=10, color=palette[u], ls="none")
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlim(left=-1e-4)
        ax.invert_xaxis()  # training runs left to right
        ax.set(yscale="log", xlabel="training error (eval mode; ★ = converged)", ylabel="clones (width / critical chunk)")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(arch, fontsize=9, loc="left")
        ax.legend(fontsize=7, title="width", title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
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
    """Test error (mean ± SE) per method, regime (hue) and data (columns), from the summary table."""
    table = table[table["method"] != "ensemble_of_2"]
    grid = sns.catplot(data=table, x="method", y="test_error_mean", hue="regime", col="data", kind="bar",
                       height=3.2, aspect=1.2, sharey=False, errorbar=None, col_wrap=min(3, table["data"].nunique()))
    for ax, (_, sub) in zip(grid.axes.flat, table.groupby("data", sort=False)):
        # seaborn orders bars method-major, regime-minor: place error bars on the bar centres
        for bar, (_, r) in zip(ax.patches, sub.sort_values(["regime", "method"], key=_order(sub)).iterrows()):
            if np.isfinite(r["test_error_se"]):
                ax.errorbar(bar.get_x() + bar.get_width() / 2, r["test_error_mean"], yerr=r["test_error_se"],
                            color="k", capsize=2, lw=1)
        ax.tick_params(axis="x", labelsize=8, rotation=30)
    grid.set_axis_labels("", "test error")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


def _order(sub):
    """Sort key reproducing seaborn's category order (first appearance) for regime and method."""
    orders = {c: {v: i for i, v in enumerate(dict.fromkeys(sub[c]))} for c in ("regime", "method")}
    return lambda col: col.map(orders[col.name])


def ensembles_size_figure(datasets: dict, *, title: str | None = None):
    """Test error of an ensemble against its size (mean over trials), per data (columns) and regime (hue)."""
    rows = [{"data": d, "regime": r, "size": int(s), "test_error": float(e)}
            for (d, r), ds in datasets.items()
            for s, e in zip(ds["size"].values, ds["ensemble_error"].mean("trial").values)]
    grid = sns.relplot(data=pd.DataFrame(rows), x="size", y="test_error", hue="regime", col="data",
                       kind="line", marker="o", height=3.0, facet_kws={"sharey": False},
                       col_wrap=min(3, len({d for d, _ in datasets})))
    grid.set_axis_labels("ensemble size", "test error")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


_MU_METHODS = {"single": "C0", "ensemble": "C1", "kd": "C2", "self_kd": "C3", "average": "C4", "ensemble_of_2": "0.5"}


def ensembles_mu_figure(table: pd.DataFrame, *, title: str | None = None):
    """Test error against the single-view fraction μ, one panel per regime, with the paper's lines.

    Points: mean ± SE per method (summary table rows with a finite mu); legend entries count the
    μ at which the method's claim holds (verdict column). Lines (feature regime, the paper's
    mechanism with V views per class and N members): single μ(1 − 1/V), self-KD ≈ ensemble of two
    μ(1 − 1/V)², ensemble and KD ≤ 0.01μ (Theorems 2–3), and the "≪ μ" limit 0.1μ used by the
    verdicts.
    """
    # imported here: only this figure needs it, and every figure rule lists plots.py's imports
    from repatlas.ensemble_claims import TOLERANCE

    table = table[np.isfinite(table["mu"])]
    regimes = list(dict.fromkeys(table["regime"]))
    fig, axes = plt.subplots(1, len(regimes), figsize=(4.8 * len(regimes), 5.0), squeeze=False)
    mus = np.sort(table["mu"].unique())
    grid = np.linspace(0, mus.max() * 1.05, 50)
    v = int(table["views_per_class"].iloc[0])
    miss = 1 - 1 / v
    for ax, regime in zip(axes[0], regimes):
        sub = table[table["regime"] == regime]
        offsets = np.linspace(-0.006, 0.006, len(_MU_METHODS)) * mus.max() / 0.3
        for (method, colour), dx in zip(_MU_METHODS.items(), offsets):
            m = sub[sub["method"] == method].sort_values("mu")
            if m.empty:
                continue
            verdicts = [x for x in m["verdict"] if isinstance(x, str) and x]  # NaN once read from CSV
            held = f" — holds {sum(x == 'holds' for x in verdicts)}/{len(verdicts)}" if verdicts else ""
            ax.errorbar(m["mu"] + dx, m["test_error_mean"], yerr=m["test_error_se"].fillna(0), color=colour,
                        marker="o" if method != "ensemble_of_2" else "x", ls="-", lw=0.8, ms=4, capsize=2,
                        label=f"{method}{held}")
        if regime == "feature":
            ax.plot(grid, miss * grid, "--", color="C0", lw=1, label=f"paper: single ≈ μ(1−1/V) = {miss:.2g}μ")
            ax.plot(grid, miss**2 * grid, "--", color="C3", lw=1, label=f"paper: self-KD ≈ ens. of 2 = {miss**2:.2g}μ")
            ax.plot(grid, 0.01 * grid, ":", color="C1", lw=1.2, label="paper: ensemble, KD ≤ 0.01μ")
            ax.plot(grid, TOLERANCE * grid, ":", color="0.6", lw=1, label=f"verdict limit for ≪ μ: {TOLERANCE:g}μ")
        ax.set_title(f"{regime} regime", fontsize=10)
        ax.set_xlabel("single-view fraction μ")
        ax.set_xticks(mus)
        ax.set_xlim(0, mus.max() * 1.08)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("test error (mean ± SE)")
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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


# ----------------------------------------------------------------------------- wide vs deep: blocks, first PC, probes, pruning, errors

_CELL_KEYS = ("depth", "width", "n", "seed")
_SIDE_COLOURS = {"inside": "C3", "outside": "C0"}  # inside / outside a block, the same in every figure
_MARKERS = "osD^vP*Xhp"


def _require(needed, present, what: str) -> None:
    """One KeyError naming everything `what` lacks."""
    missing = [name for name in needed if name not in present]
    if missing:
        raise KeyError(f"{what} lacks {missing}; expected {list(needed)}")


def _check_cells(datasets, cells, needed_vars, what: str) -> None:
    if len(datasets) != len(cells):
        raise ValueError(f"datasets and cells must pair up one to one; got {len(datasets)} datasets "
                         f"and {len(cells)} cells")
    if not datasets:
        raise ValueError("datasets is empty: need at least one model")
    for i, (ds, cell) in enumerate(zip(datasets, cells)):
        _require(_CELL_KEYS, cell, f"cells[{i}]")
        _require(needed_vars, set(ds.variables), f"datasets[{i}] (from {what})")


def _model_label(depth, width) -> str:
    return f"d{int(depth)}-w{int(width)}"


def _log2_width_axis(ax, widths) -> None:
    """Log2 x axis with one tick per width present (a single width gets a small margin)."""
    widths = sorted({int(w) for w in widths})
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.minorticks_off()
    ax.set_xlim(widths[0] / 1.4, widths[-1] * 1.4)


def _spread(count: int, half_width: float) -> np.ndarray:
    """Deterministic offsets that keep `count` overlapping points apart."""
    return np.linspace(-half_width, half_width, count) if count > 1 else np.zeros(count)


def blocks_figure(table: pd.DataFrame, *, title: str | None = None):
    """Size of the largest block (fraction of the layers) against width, hue = depth, one column
    per training-set size n; lines = mean over seeds, faint points = each seed.

    `table` is `repatlas.blocks.block_table`'s DataFrame; a model without blocks counts 0. With
    several datasets or architectures in the table, columns name the dataset and hues the arch.
    When the table has seed_cka_inside / seed_cka_outside with some finite value, a bottom panel
    shows, per architecture, the cross-seed CKA of corresponding layers inside vs outside blocks
    (bars = mean over seeds, points = seeds; NaN skipped).
    """
    needed = ("dataset", "n", "arch", "depth", "width", "seed", "n_layers", "largest_length")
    _require(needed, table.columns, "table (from repatlas.blocks.block_table)")
    if table.empty:
        raise ValueError("table has no rows: need at least one model")
    df = table.copy()
    df["fraction"] = df["largest_length"] / df["n_layers"]
    several_data = df["dataset"].nunique() > 1
    several_arch = df["arch"].nunique() > 1
    df["panel"] = list(zip(df["dataset"], df["n"]))
    df["series"] = list(zip(df["arch"], df["depth"]))
    panels = sorted(set(df["panel"]))
    series = sorted(set(df["series"]))
    colours = dict(zip(series, sns.color_palette("crest", len(series))))
    seed_cols = ("seed_cka_inside", "seed_cka_outside")
    with_seeds = all(c in df for c in seed_cols) and np.isfinite(df[list(seed_cols)].to_numpy(float)).any()

    fig = plt.figure(figsize=(max(4.0 * len(panels), 6.5), 3.6 * (2 if with_seeds else 1)), layout="constrained")
    grid = fig.add_gridspec(2 if with_seeds else 1, len(panels))
    axes = []
    for j, (dataset, n) in enumerate(panels):
        ax = fig.add_subplot(grid[0, j], sharey=axes[0] if axes else None)
        axes.append(ax)
        sub = df[df["panel"] == (dataset, n)]
        for k, key in enumerate(series):
            part = sub[sub["series"] == key]
            if part.empty:
                continue
            label = f"{key[0]}, depth {key[1]}" if several_arch else f"depth {key[1]}"
            means = part.groupby("width")["fraction"].mean()
            ax.plot(means.index, means.values, color=colours[key], marker=_MARKERS[k % len(_MARKERS)],
                    label=label)
            for width, seeds in part.sort_values("seed").groupby("width"):
                x = width * 2.0 ** _spread(len(seeds), 0.08)  # spread seeds in log2 units
                ax.scatter(x, seeds["fraction"], color=colours[key], alpha=0.35, s=14, linewidths=0)
        _log2_width_axis(ax, sub["width"])
        ax.set_ylim(-0.04, 1.04)
        ax.set_xlabel("width w (channel multiplier / units)")
        ax.set_title(f"{dataset}, n = {n} training examples" if several_data else f"n = {n} training examples",
                     fontsize=9)
        if j == 0:
            ax.set_ylabel("largest block / layers")
        else:
            ax.tick_params(labelleft=False)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # a depth missing from the first panel still gets its legend entry
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    handles.append(plt.Line2D([], [], color="grey", marker="o", alpha=0.35, linestyle="none"))
    labels.append("one seed (line: mean)")
    axes[-1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))

    if with_seeds:
        ax = fig.add_subplot(grid[1, :])
        _seed_similarity_panel(ax, df, several_n=len(panels) > 1, several_arch=several_arch)
    fig.suptitle(title or "Block structure: size of the largest block of similar layers")
    return fig


def _seed_similarity_panel(ax, df: pd.DataFrame, *, several_n: bool, several_arch: bool) -> None:
    """Bars: mean cross-seed CKA inside / outside blocks per architecture; points: seeds."""
    df = df.sort_values(["dataset", "n", "arch", "depth", "width"])
    df["key"] = [f"{r['dataset']}|{r['n']}|{r['arch']}|{r['depth']}|{r['width']}" for _, r in df.iterrows()]
    long = df.melt(id_vars=["key", "seed"], value_vars=["seed_cka_inside", "seed_cka_outside"],
                   var_name="where", value_name="cka")
    long["where"] = long["where"].str.removeprefix("seed_cka_")
    long = long[np.isfinite(long["cka"].astype(float))]
    first = df.drop_duplicates("key")
    common = {"data": long, "x": "key", "y": "cka", "hue": "where", "order": list(first["key"]),
              "hue_order": list(_SIDE_COLOURS), "palette": _SIDE_COLOURS, "ax": ax}
    sns.barplot(**common, errorbar=None, alpha=0.6)
    # seaborn jitters strip points with the global NumPy generator: a fixed state keeps the figure
    # identical between runs (and leaves the caller's state as it was)
    state = np.random.get_state()
    np.random.seed(0)
    try:
        sns.stripplot(**common, dodge=True, size=4, legend=False, edgecolor="k", linewidth=0.5)
    finally:
        np.random.set_state(state)
    names = [(f"{a} " if several_arch else "") + _model_label(d, w)
             for a, d, w in zip(first["arch"], first["depth"], first["width"])]
    many = len(names) > 10
    ax.set_xticks(range(len(names)), names, fontsize=7, rotation=40 if many else 0, ha="right" if many else "center")
    if several_n:  # one group of architectures per training-set size, labelled at the top
        groups = list(zip(first["dataset"], first["n"]))
        edges = [i for i in range(1, len(groups)) if groups[i] != groups[i - 1]]
        for i in edges:
            ax.axvline(i - 0.5, color="grey", linestyle="--", linewidth=0.8)
        several_data = first["dataset"].nunique() > 1
        for lo, hi in zip([0, *edges], [*edges, len(groups)]):
            dataset, n = groups[lo]
            ax.text((lo + hi - 1) / 2, 1.03, f"{dataset}, n = {n}" if several_data else f"n = {n}",
                    ha="center", va="top", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("architecture (d = depth, w = width)")
    ax.set_ylabel("cross-seed CKA of\ncorresponding layers")
    ax.set_title("Seed similarity: layers inside vs outside blocks (bars: mean over seeds, points: seeds)",
                 fontsize=9)
    ax.legend(title="layers", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))


def pca_figure(datasets: dict, blocks: dict, *, title: str | None = None):
    """Does block structure coincide with a dominant first principal component?

    One row per model (`datasets`: label → `repatlas.blocks.first_pc_analysis` Dataset), three
    columns: CKA, CKA after projecting PC1 out (same colour scale, layer 0 bottom left, blank =
    undefined), and PC1's explained-variance ratio per layer, bars red inside a block. `blocks`:
    label → inclusive (start, end) layer-index pairs; they are outlined on the heatmaps and
    shaded on the bar panel.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch, Rectangle

    from repatlas.blocks import _check_blocks, _in_block  # same validation as the block tables

    if not datasets:
        raise ValueError("datasets is empty: need at least one model")
    if set(datasets) != set(blocks):
        raise KeyError(f"datasets and blocks must have the same labels; only in datasets: "
                       f"{sorted(set(datasets) - set(blocks))}, only in blocks: {sorted(set(blocks) - set(datasets))}")
    fig, axes = plt.subplots(len(datasets), 3, figsize=(12, 3.3 * len(datasets)), squeeze=False,
                             layout="constrained")
    for row, (label, ds) in zip(axes, datasets.items()):
        _require(("cka", "cka_without_pc1", "pc1_ratio"), ds, f"datasets[{label!r}] (from first_pc_analysis)")
        n = ds.sizes["layer"]
        spans = _check_blocks(blocks[label], n, f"blocks[{label!r}]")
        ticks = np.unique(np.linspace(0, n - 1, min(n, 6)).round().astype(int))
        for ax, var, name in ((row[0], "cka", "CKA"), (row[1], "cka_without_pc1", "CKA without PC1")):
            values = np.asarray(ds[var].values, dtype=float)
            if values.shape != (n, n):
                raise ValueError(f"datasets[{label!r}][{var!r}] must be ({n}, {n}) like pc1_ratio; got {values.shape}")
            sns.heatmap(values[::-1], ax=ax, vmin=0.0, vmax=1.0, cmap="magma", square=True, cbar=False,
                        xticklabels=False, yticklabels=False)
            ax.set_xticks(ticks + 0.5, ticks)
            ax.set_yticks(n - 1 - ticks + 0.5, ticks)
            for start, end in spans:  # row i is drawn at height n − 1 − i
                ax.add_patch(Rectangle((start, n - 1 - end), end - start + 1, end - start + 1, fill=False,
                                       edgecolor="cyan", linewidth=1.2, gid="block"))
            ax.set_title(f"{label}: {name}", fontsize=9)
            ax.set_xlabel("layer")
        row[0].set_ylabel("layer")
        ratio = np.asarray(ds["pc1_ratio"].values, dtype=float)
        inside = _in_block(spans, n)
        ax = row[2]
        for start, end in spans:
            ax.axvspan(start - 0.5, end + 0.5, color="C3", alpha=0.12, linewidth=0, gid="block")
        ax.bar(np.arange(n), ratio, color=np.where(inside, "C3", "0.55"), width=0.8)
        ax.set_xticks(ticks)
        ax.set(xlim=(-0.6, n - 0.4), ylim=(0, 1), xlabel="layer", ylabel="PC1 explained variance / total")
        summary = (f"PC1 share: {ratio[inside].mean():.2f} in blocks, "
                   f"{ratio[~inside].mean():.2f} outside" if inside.any() and (~inside).any()
                   else "PC1 share (no block detected)" if not inside.any() else "PC1 share (all layers in blocks)")
        ax.set_title(f"{label}: {summary}", fontsize=9)
    fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), "magma"), ax=axes[:, :2], shrink=0.8,
                 label="linear CKA")
    axes[0, 2].legend(handles=[Patch(color="C3", alpha=0.4, label="layer in a detected block"),
                               Patch(color="0.55", label="layer outside blocks"),
                               Patch(fill=False, edgecolor="cyan", label="block (heatmaps)")],
                      fontsize=7, loc="upper right")
    fig.suptitle(title or "Block structure and the first principal component")
    return fig


def _probe_frame(datasets, cells) -> pd.DataFrame:
    _check_cells(datasets, cells, ("test_accuracy", "relative_depth"), "repatlas.probes.linear_probes")
    frames = []
    for ds, cell in zip(datasets, cells):
        frames.append(pd.DataFrame({"relative_depth": np.asarray(ds["relative_depth"].values, dtype=float),
                                    "test_accuracy": np.asarray(ds["test_accuracy"].values, dtype=float),
                                    "status": ds.attrs.get("status", "probed"),
                                    "input": float(ds.attrs.get("input_test_accuracy", np.nan)),
                                    **{k: cell[k] for k in _CELL_KEYS}}))
    return pd.concat(frames, ignore_index=True)


def probes_figure(datasets: list, cells: list, *, title: str | None = None):
    """Linear-probe test accuracy against relative depth: hue = width, one column per depth, one
    row per training-set size n; line = mean over seeds, band = ± 1 sd (with ≥ 2 seeds).

    `datasets[i]` is a `repatlas.probes.linear_probes` Dataset of the model `cells[i]` =
    {"depth", "width", "n", "seed"}. A dotted line marks chance (1 / n_classes) when the
    Datasets agree on n_classes. A dashed line marks the probe on the input itself (attrs
    input_test_accuracy of `repatlas.probes.probes_to_file`, mean over the facet's models); a
    facet whose models were not probed because the input probe reached the ceiling (status
    "ceiling") says so instead of drawing curves.
    """
    df = _probe_frame(datasets, cells)
    ns, depths, widths = (sorted(set(df[k])) for k in ("n", "depth", "width"))
    colours = dict(zip(widths, sns.color_palette("flare", len(widths))))
    classes = {ds.attrs.get("n_classes") for ds in datasets}
    chance = 1.0 / classes.pop() if len(classes) == 1 and None not in classes else None
    fig, axes = plt.subplots(len(ns), len(depths), figsize=(3.4 * len(depths) + 1.5, 3.0 * len(ns)),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    for i, n in enumerate(ns):
        for j, depth in enumerate(depths):
            ax = axes[i, j]
            sub = df[(df["n"] == n) & (df["depth"] == depth)]
            for width in widths:
                part = sub[sub["width"] == width]
                if part.empty:
                    continue
                stats = part.groupby("relative_depth")["test_accuracy"].agg(["mean", "std", "count"])
                ax.plot(stats.index, stats["mean"], color=colours[width], marker="o", markersize=3,
                        label=f"width {width}")
                if (stats["count"] > 1).all():
                    ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                                    color=colours[width], alpha=0.2, linewidth=0)
            if chance is not None:
                ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
            if np.isfinite(sub["input"]).any():
                ax.axhline(sub["input"].mean(), color="k", linestyle="--", linewidth=0.8, label="input probe")
            if (sub["status"] == "ceiling").all():
                ax.text(0.5, 0.5, f"ceiling: input probe {sub['input'].mean():.3f}\n(layers not probed)",
                        transform=ax.transAxes, ha="center", va="center", fontsize=8)
            ax.set_title(f"depth {depth}, n = {n}", fontsize=9)
            ax.set_ylim(0, 1.02)
            if i == len(ns) - 1:
                ax.set_xlabel("relative depth (layer / (layers − 1))")
            if j == 0:
                ax.set_ylabel("probe test accuracy")
    handles = [plt.Line2D([], [], color=colours[w], marker="o", markersize=3, label=f"{w}") for w in widths]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.2, label="± 1 sd over seeds"))
    if chance is not None:
        handles.append(plt.Line2D([], [], color="grey", linestyle=":", label="chance"))
    if np.isfinite(df["input"]).any():
        handles.append(plt.Line2D([], [], color="k", linestyle="--", linewidth=0.8, label="input probe"))
    fig.legend(handles=handles, title="width (mean over seeds)", fontsize=7, title_fontsize=7,
               loc="outside right upper")
    fig.suptitle(title or "Linear probes on every layer")
    return fig


def pruning_figure(datasets: list, cells: list, *, title: str | None = None):
    """Test-accuracy change when one residual block is removed (no fine-tuning): one x position
    per architecture (one panel per n if several), red points = block inside the block structure,
    blue = outside, black bars = means; a line at 0.

    `datasets[i]` is a `repatlas.probes.pruning_experiment` Dataset of the model `cells[i]`.
    Tick labels give each architecture's full-model accuracy (mean over seeds).
    """
    _check_cells(datasets, cells, ("accuracy_change", "inside"), "repatlas.probes.pruning_experiment")
    rows = []
    for i, (ds, cell) in enumerate(zip(datasets, cells)):
        if "base_accuracy" not in ds.attrs:
            raise KeyError(f"datasets[{i}] lacks attrs['base_accuracy'] (from repatlas.probes.pruning_experiment)")
        for change, inside in zip(np.asarray(ds["accuracy_change"].values, dtype=float),
                                  np.asarray(ds["inside"].values, dtype=bool)):
            rows.append({**{k: cell[k] for k in _CELL_KEYS}, "change": change,
                         "where": "inside" if inside else "outside", "base": float(ds.attrs["base_accuracy"])})
    df = pd.DataFrame(rows, columns=[*_CELL_KEYS, "change", "where", "base"])
    ns = sorted({c["n"] for c in cells})
    models_per_n = {n: sorted({(c["depth"], c["width"]) for c in cells if c["n"] == n}) for n in ns}
    fig, axes = plt.subplots(1, len(ns), figsize=(max(5.0, 1.3 * sum(map(len, models_per_n.values())) + 3), 3.8),
                             squeeze=False, sharey=True, layout="constrained",
                             gridspec_kw={"width_ratios": [len(models_per_n[n]) for n in ns]})
    for ax, n in zip(axes[0], ns):
        models = models_per_n[n]
        sub = df[df["n"] == n]
        for where, shift in (("inside", -0.15), ("outside", 0.15)):
            xs, ys = [], []
            for k, (depth, width) in enumerate(models):
                part = sub[(sub["where"] == where) & (sub["depth"] == depth) & (sub["width"] == width)]
                if part.empty:
                    continue
                xs.extend(k + shift + _spread(len(part), 0.1))
                ys.extend(part["change"])
                ax.plot([k + shift], [part["change"].mean()], color="k", marker="_", markersize=14,
                        linestyle="none")
            ax.scatter(xs, ys, color=_SIDE_COLOURS[where], s=16, alpha=0.8, edgecolors="none",
                       label=f"{where} a block" if where == "inside" else "outside blocks")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        base = [sub.loc[(sub["depth"] == d) & (sub["width"] == w), "base"].drop_duplicates().mean()
                for d, w in models]
        ax.set_xticks(range(len(models)), [f"{_model_label(d, w)}\nfull {b:.3f}" for (d, w), b in zip(models, base)],
                      fontsize=7)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_xlabel("architecture (d = depth, w = width)")
        if len(ns) > 1:
            ax.set_title(f"n = {n} training examples", fontsize=9)
    axes[0, 0].set_ylabel("test accuracy change\n(block removed − full model)")
    handles = [plt.Line2D([], [], color=_SIDE_COLOURS["inside"], marker="o", linestyle="none", label="inside a block"),
               plt.Line2D([], [], color=_SIDE_COLOURS["outside"], marker="o", linestyle="none", label="outside blocks"),
               plt.Line2D([], [], color="k", marker="_", markersize=10, linestyle="none", label="mean"),
               plt.Line2D([], [], color="grey", linewidth=0.8, label="no change")]
    fig.legend(handles=handles, title="removed residual block", fontsize=7, title_fontsize=7,
               loc="outside right upper")
    fig.suptitle(title or "Removing one residual block (no fine-tuning)")
    return fig


_ERROR_VARS = ("error_a", "error_b", "class_error_a", "class_error_b", "class_p_value", "class_count",
               "mean_accuracy_a", "mean_accuracy_b", "disagreement_between", "disagreement_within")
_ERROR_ATTRS = ("statistic", "p_value", "min_p", "n_permutations", "exact", "seeds_a", "seeds_b")
_MAX_ANNOTATED_LEVELS = 21  # more seeds than this: the count table is too dense to print counts


def errors_figure(ds, *, label_a: str, label_b: str, title: str | None = None):
    """Per-class error rates of A and B, and how their per-example error rates co-occur.

    `ds` is a `repatlas.errors.error_analysis` Dataset. Left: grouped bars of each class's error
    rate (mean over seeds), * = class permutation p < 0.05, uncorrected for multiple comparisons.
    Right: number of test examples per (fraction of A's seeds wrong, fraction of B's seeds wrong),
    counts printed, dotted line = equal error rates. The subtitle gives T, its permutation p and
    the smallest attainable p, seeds per architecture, mean accuracies and disagreements.
    """
    _require(_ERROR_VARS, ds.variables, "ds (from repatlas.errors.error_analysis)")
    _require(_ERROR_ATTRS, ds.attrs, "ds.attrs (from repatlas.errors.error_analysis)")
    s_a, s_b = int(ds.attrs["seeds_a"]), int(ds.attrs["seeds_b"])
    fig, (ax_c, ax_e) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained",
                                     gridspec_kw={"width_ratios": [1.3, 1.0]})

    classes = [str(c) for c in ds["class"].values]
    x = np.arange(len(classes))
    err_a = np.asarray(ds["class_error_a"].values, dtype=float)
    err_b = np.asarray(ds["class_error_b"].values, dtype=float)
    ax_c.bar(x - 0.2, err_a, 0.4, color="C0", label=label_a)
    ax_c.bar(x + 0.2, err_b, 0.4, color="C1", label=label_b)
    significant = np.asarray(ds["class_p_value"].values, dtype=float) < 0.05
    for k in np.flatnonzero(significant):
        ax_c.text(x[k], max(err_a[k], err_b[k]) + 0.01, "*", ha="center", va="bottom", fontsize=12)
    ax_c.plot([], [], marker="$*$", color="k", linestyle="none",
              label="class p < 0.05 (permutation, uncorrected)")
    counts = np.asarray(ds["class_count"].values)
    ax_c.set_xticks(x, [f"{c}\n({m})" for c, m in zip(classes, counts)], fontsize=7)
    ax_c.set_ylim(0, max(err_a.max(), err_b.max()) * 1.1 + 0.06)  # headroom for the stars
    ax_c.set(xlabel="class (test examples)", ylabel="error rate (mean over seeds)")
    ax_c.legend(fontsize=7)
    ax_c.set_title("Per-class error rates", fontsize=9)

    # error_x is a fraction of seeds: k / S_x exactly, so rounding recovers the count of seeds wrong
    k_a = np.rint(np.asarray(ds["error_a"].values) * s_a).astype(int)
    k_b = np.rint(np.asarray(ds["error_b"].values) * s_b).astype(int)
    table = np.zeros((s_b + 1, s_a + 1), dtype=int)
    np.add.at(table, (k_b, k_a), 1)
    shown = table[::-1]  # 0 seeds wrong at the bottom
    annotate = max(s_a, s_b) + 1 <= _MAX_ANNOTATED_LEVELS
    text = np.where(shown > 0, shown.astype(str), "") if annotate else False
    sns.heatmap(np.log10(1 + shown), ax=ax_e, cmap="mako_r", annot=text, fmt="", annot_kws={"fontsize": 7},
                xticklabels=[f"{k}/{s_a}" for k in range(s_a + 1)],
                yticklabels=[f"{k}/{s_b}" for k in range(s_b, -1, -1)],
                cbar_kws={"label": "log10(1 + test examples)"})
    ax_e.plot([0.5, s_a + 0.5], [s_b + 0.5, 0.5], color="grey", linestyle=":", linewidth=1,
              label="equal error rates")
    ax_e.legend(fontsize=7, loc="upper right")
    ax_e.tick_params(labelsize=7)
    ax_e.tick_params(axis="y", labelrotation=0)
    ax_e.set(xlabel=f"fraction of {label_a}'s seeds wrong", ylabel=f"fraction of {label_b}'s seeds wrong")
    ax_e.set_title("Test examples by per-example error rate (counts printed)", fontsize=9)

    a = ds.attrs
    within = float(ds["disagreement_within"])
    within = f"{within:.3f}" if np.isfinite(within) else "n/a (needs ≥ 2 seeds each)"
    kind = "all" if int(a["exact"]) else "random"
    fig.suptitle(
        f"{title or f'{label_a} vs {label_b}: per-example errors'}\n"
        f"T = mean (error_A − error_B)² = {float(a['statistic']):.4g}, permutation p = {float(a['p_value']):.3g} "
        f"({int(a['n_permutations'])} {kind} reassignments of seeds; smallest attainable p = {float(a['min_p']):.2g})\n"
        f"{s_a} seeds of {label_a}, {s_b} of {label_b}; mean accuracy {float(ds['mean_accuracy_a']):.3f} vs "
        f"{float(ds['mean_accuracy_b']):.3f}; disagreement between architectures "
        f"{float(ds['disagreement_between']):.3f}, within {within}",
        fontsize=9,
    )
    return fig


def blocks_figure_to_file(table_csv, out_paths, *, title: str | None = None) -> None:
    """`block_table` CSV (repatlas.blocks.block_table_to_file) → `blocks_figure` at each out path."""
    save_figure(blocks_figure(pd.read_csv(table_csv), title=title), *out_paths)


def pca_figure_to_file(first_pc_paths: dict, within_paths: dict, out_paths, *, threshold: float,
                       min_length: int, min_pc1_share: float = 0.5, title: str | None = None) -> None:
    """{label: first-PC .nc} + {label: within-model CKA .nc} → `pca_figure` at each out path.

    Blocks are those of the block table and pruning (`repatlas.blocks.model_blocks`: high
    within-model CKA and mean PC1 share ≥ `min_pc1_share`); the CKA's layers must be the
    first-PC file's.
    """
    import xarray as xr

    from repatlas.blocks import model_blocks

    if set(first_pc_paths) != set(within_paths):
        raise KeyError(f"first_pc_paths and within_paths must have the same labels; got "
                       f"{sorted(first_pc_paths)} and {sorted(within_paths)}")
    datasets, blocks = {}, {}
    for label, path in first_pc_paths.items():
        datasets[label] = xr.load_dataset(path)
        blocks[label] = model_blocks(xr.load_dataarray(within_paths[label]), datasets[label], threshold=threshold,
                                     min_length=min_length, min_pc1_share=min_pc1_share,
                                     source=f"{within_paths[label]} (for {path})")
    save_figure(pca_figure(datasets, blocks, title=title), *out_paths)


def _load_all(paths) -> list:
    import xarray as xr

    return [xr.load_dataset(path) for path in paths]


def probes_figure_to_file(paths, cells, out_paths, *, title: str | None = None) -> None:
    """Probe .nc files (repatlas.probes.probes_to_file) + one cell dict each → `probes_figure`."""
    save_figure(probes_figure(_load_all(paths), list(cells), title=title), *out_paths)


def pruning_figure_to_file(paths, within_paths, cells, out_paths, *, threshold: float, min_length: int,
                           first_pc_paths=None, min_pc1_share: float = 0.5, title: str | None = None) -> None:
    """Pruning .nc files (repatlas.probes.pruning_to_file), each labelled inside / outside the
    blocks of its model's within-model CKA file (`repatlas.blocks.label_pruning_with_cka`; with
    `first_pc_paths`, one first-PC .nc per model, only PC1-dominated runs are blocks), + one
    cell dict each → `pruning_figure`."""
    import xarray as xr

    from repatlas.blocks import label_pruning_with_cka

    first_pc = [None] * len(paths) if first_pc_paths is None else [xr.load_dataset(p) for p in first_pc_paths]
    labelled = [label_pruning_with_cka(ds, xr.load_dataarray(within), threshold=threshold, min_length=min_length,
                                       first_pc=pc, min_pc1_share=min_pc1_share)
                for ds, within, pc in zip(_load_all(paths), within_paths, first_pc, strict=True)]
    save_figure(pruning_figure(labelled, list(cells), title=title), *out_paths)


def errors_figure_to_file(path, out_paths, *, label_a: str, label_b: str, title: str | None = None) -> None:
    """Error-analysis .nc (repatlas.errors.error_analysis_to_file) → `errors_figure`."""
    import xarray as xr

    save_figure(errors_figure(xr.load_dataset(path), label_a=label_a, label_b=label_b, title=title), *out_paths)
