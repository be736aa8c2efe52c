"""Representation-mitosis figures: chunk metrics against chunk size, clones against width and along
training, and the widest model against an ensemble of narrow ones."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from repatlas.plots.common import axes_title, figure_title, log_x_ticks


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
        figure_title(fig, title)
    fig.tight_layout()
    return fig


def mitosis_clones_figure(datasets, cells, *, title: str | None = None):
    """Estimated clones (width ÷ critical chunk size) against last-hidden-layer width (units);
    colour = architecture, line style = regime, mean ± sd over seeds, with a grey ∝ width guide;
    shaded: the range over the stored R² thresholds, dashed: the held-out R² estimate."""
    df = pd.DataFrame([{"arch": "mlp", **cell, "units": int(ds.attrs["width"]),
                        "clones": float(ds.attrs["clones"])}
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
    log_x_ticks(ax, df["units"])
    axes_title(ax, title)
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
                     "hi": np.nanmax(c),
                     "heldout": _clones_at(ds, "heldout", float(ds.attrs["r2_threshold"]))})
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
        ax.set(yscale="log", xlabel="training error (eval mode; ★ = converged)",
               ylabel="clones (width / critical chunk)")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(arch, fontsize=9, loc="left")
        ax.legend(fontsize=7, title="width", title_fontsize=7)
    if title:
        figure_title(fig, title, fontsize=9)
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
    axes_title(ax, title)
    fig.tight_layout()
    return fig


