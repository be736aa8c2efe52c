"""Wide-vs-deep figures (Nguyen et al.): block structure against width, depth and n, blocks and the
first principal component, linear probes, pruning one residual block, per-example errors."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from repatlas.blocks import check_blocks
from repatlas.plots.common import (
    CKA_LABEL,
    MAX_INCHES,
    colour_bar,
    facet_inches,
    headroom,
    layer_heatmap,
    layer_names,
    layer_ticks,
    outline_blocks,
    tick_text,
    title_width,
    wrap,
)

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

    fig = plt.figure(figsize=(max(4.0 * len(panels), 6.5), 3.6 * (2 if with_seeds else 1)),
                     layout="constrained")
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
        ax.set_title(f"{dataset}, n = {n} training examples" if several_data
                     else f"n = {n} training examples", fontsize=9)
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
    ax.set_xticks(range(len(names)), names, fontsize=7, rotation=40 if many else 0,
                  ha="right" if many else "center")
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


def split_cka(cka, cka_without_pc1) -> np.ndarray:
    """One square from two symmetric CKA matrices: entry (i, j) is `cka` where i > j (layer_a deeper
    than layer_b: above the diagonal once layer 0 is drawn bottom left) and `cka_without_pc1` on
    and below the diagonal (its diagonal is blank where removing PC1 leaves nothing)."""
    k, k0 = np.asarray(cka, dtype=float), np.asarray(cka_without_pc1, dtype=float)
    i, j = np.indices(k.shape)
    return np.where(i > j, k, k0)


def pca_figure(datasets: list, blocks: list, cells: list, *, title: str | None = None):
    """Does block structure coincide with a dominant first principal component?

    One row per depth, one heatmap column per width, and a last column of line plots.
    `datasets[i]` is the `repatlas.blocks.first_pc_analysis` Dataset of the model `cells[i]`
    ({"depth", "width", ...}; one model per (depth, width)); `blocks[i]` its inclusive (start,
    end) layer-index blocks. Each heatmap is split along the diagonal (`split_cka`): above it the
    model's CKA, on and below it the CKA after projecting PC1 out of every layer (one shared
    colour scale [0, 1], layer 0 bottom left, blank = undefined); blocks are outlined in cyan. A
    block that disappears below the diagonal was carried by PC1. The line plots give PC1's
    explained-variance ratio per layer, one line per width, filled markers on layers inside a
    block; the legend gives each model's mean share inside / outside its blocks.
    """
    if not datasets:
        raise ValueError("datasets is empty: need at least one model")
    if not len(datasets) == len(blocks) == len(cells):
        raise ValueError(f"datasets, blocks and cells must pair up one to one; got {len(datasets)}, "
                         f"{len(blocks)} and {len(cells)}")
    for i, cell in enumerate(cells):
        _require(("depth", "width"), cell, f"cells[{i}]")
    keys = [(int(c["depth"]), int(c["width"])) for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError(f"cells must name one model per (depth, width); got {keys}")
    depths, widths = sorted({d for d, _ in keys}), sorted({w for _, w in keys})
    colours = dict(zip(widths, sns.color_palette("flare", len(widths))))
    side = facet_inches(len(depths), len(widths) + 1.4, preferred=2.6, extra_width=3.0)  # + legends
    fig_width = side * (len(widths) + 1.4) + 1.4
    fig, axes = plt.subplots(len(depths), len(widths) + 1, squeeze=False, layout="constrained",
                             figsize=(fig_width, side * len(depths) + 1.4),
                             gridspec_kw={"width_ratios": [1.0] * len(widths) + [1.4]})
    heatmaps = axes[:, :-1]
    row_names = [[] for _ in depths]  # layer names of each depth, for the line plots' ticks
    for ax in heatmaps.flat:
        ax.axis("off")  # switched back on where a model is drawn
    for i, (ds, spans, (depth, width)) in enumerate(zip(datasets, blocks, keys)):
        _require(("cka", "cka_without_pc1", "pc1_ratio"), ds, f"datasets[{i}] (from first_pc_analysis)")
        n = ds.sizes["layer"]
        spans = check_blocks(spans, n, f"blocks[{i}]")
        r, c = depths.index(depth), widths.index(width)
        for var in ("cka", "cka_without_pc1"):
            if ds[var].shape != (n, n):
                raise ValueError(f"datasets[{i}][{var!r}] must be ({n}, {n}) like pc1_ratio; "
                                 f"got {ds[var].shape}")
        ax = heatmaps[r, c]
        ax.axis("on")
        names = layer_names(ds, "layer", n)
        if len(names) >= len(row_names[r]):
            row_names[r] = names
        layer_heatmap(ax, split_cka(ds["cka"].values, ds["cka_without_pc1"].values), x_names=names,
                      y_names=names)
        ax.plot([0, n], [n, 0], color="white", linewidth=0.6)  # the diagonal splits the two matrices
        outline_blocks(ax, spans, n)
        ax.set_title(f"depth {depth}, width {width}", fontsize=8)
        ax.set_xlabel("layer" if r == len(depths) - 1 else "", fontsize=8)
        ax.set_ylabel("layer" if c == 0 else "", fontsize=8)

        ratio = np.asarray(ds["pc1_ratio"].values, dtype=float)
        inside = np.zeros(n, dtype=bool)
        for start, end in spans:
            inside[start : end + 1] = True
        share = (f"{ratio[inside].mean():.2f} in / {ratio[~inside].mean():.2f} out"
                 if inside.any() and (~inside).any()
                 else "no block" if not inside.any() else f"{ratio.mean():.2f}, all in blocks")
        line_ax = axes[r, -1]
        line_ax.plot(np.arange(n), ratio, color=colours[width], linewidth=1, label=f"w{width}: {share}")
        line_ax.scatter(np.flatnonzero(inside), ratio[inside], color=colours[width], s=14, zorder=3,
                        gid="block")
        line_ax.scatter(np.flatnonzero(~inside), ratio[~inside], s=14, zorder=3, facecolors="white",
                        edgecolors=colours[width], linewidths=0.8)
    for r, depth in enumerate(depths):
        line_ax = axes[r, -1]
        n = max(len(line.get_xdata()) for line in line_ax.get_lines())
        ticks = layer_ticks(n)
        text = tick_text(row_names[r] or [str(i) for i in range(n)], ticks)  # as on the heatmaps
        line_ax.set_xticks(ticks, text, fontsize=7, rotation=0 if all(t.isdigit() for t in text) else 90)
        line_ax.set_ylim(0, 1.02)
        line_ax.set_ylabel("PC1 variance / total", fontsize=8)
        line_ax.set_xlabel("layer" if r == len(depths) - 1 else "", fontsize=8)
        line_ax.set_title(f"depth {depth}: PC1 share per layer", fontsize=8)
        line_ax.tick_params(labelsize=7)
        line_ax.legend(fontsize=6, title="mean share (● in a block, ○ outside)", title_fontsize=6,
                       loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    colour_bar(fig, heatmaps, label=f"{CKA_LABEL}: above the diagonal as measured, on and below it with PC1 "
               "projected out", shrink=0.9, location="bottom")
    fig.suptitle(wrap(title or "Block structure and the first principal component",
                      title_width(fig_width, 11)), fontsize=11)
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
    input_test_accuracy of `repatlas.steps.widedeep.probes_to_file`, mean over the facet's models); a
    facet whose models were not probed because the input probe reached the ceiling (status
    "ceiling") says so instead of drawing curves. The shared y axis spans the curves, bands and
    input probes (a 0–1 axis flattened Nguyen et al.'s 0.92–0.97 differences); chance is named
    in the legend when it lies below that range.
    """
    df = _probe_frame(datasets, cells)
    ns, depths, widths = (sorted(set(df[k])) for k in ("n", "depth", "width"))
    colours = dict(zip(widths, sns.color_palette("flare", len(widths))))
    classes = {ds.attrs.get("n_classes") for ds in datasets}
    chance = 1.0 / classes.pop() if len(classes) == 1 and None not in classes else None
    fig, axes = plt.subplots(len(ns), len(depths), figsize=(3.4 * len(depths) + 1.5, 3.0 * len(ns)),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    shown = []  # every y value drawn, for the axis range
    drawn = set()  # widths with curves (none where every facet hit the ceiling)
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
                if np.isfinite(stats["mean"]).any():
                    drawn.add(width)
                shown.extend(stats["mean"])
                if (stats["count"] > 1).all():
                    shown.extend(stats["mean"] - stats["std"])
                    shown.extend(stats["mean"] + stats["std"])
                    ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                                    color=colours[width], alpha=0.2, linewidth=0)
            if chance is not None:
                ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
            if np.isfinite(sub["input"]).any():
                ax.axhline(sub["input"].mean(), color="k", linestyle="--", linewidth=0.8, label="input probe")
                shown.append(sub["input"].mean())
            if (sub["status"] == "ceiling").all():
                ax.text(0.5, 0.5, f"ceiling: input probe {sub['input'].mean():.3f}\n(layers not probed)",
                        transform=ax.transAxes, ha="center", va="center", fontsize=8)
            ax.set_title(f"depth {depth}, n = {n}", fontsize=9)
            if i == len(ns) - 1:
                ax.set_xlabel("relative depth (layer / (layers − 1))")
            if j == 0:
                ax.set_ylabel("probe test accuracy")
    if not drawn:  # input probes only: show them against the top of the scale
        shown.append(1.0)
    shown = np.asarray(shown, dtype=float)
    shown = shown[np.isfinite(shown)]
    lo, hi = headroom(shown.min(), shown.max(), bounds=(0.0, 1.02)) if len(shown) else (0.0, 1.02)
    if chance is not None and lo - (hi - lo) * 0.25 <= chance < lo:  # chance just below: show it too
        lo = headroom(chance, hi, bounds=(0.0, 1.02))[0]
    axes[0, 0].set_ylim(lo, hi)  # shared by every facet
    axes[0, 0].set_xlim(-0.03, 1.03)  # relative depth is in [0, 1], drawn or not
    handles = [plt.Line2D([], [], color=colours[w], marker="o", markersize=3, label=f"{w}")
               for w in widths if w in drawn]
    if drawn:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.2, label="± 1 sd over seeds"))
    if chance is not None:
        below = f" = {chance:.2g}, below the axis" if chance < lo else ""
        handles.append(plt.Line2D([], [], color="grey", linestyle=":", label=f"chance{below}"))
    if np.isfinite(df["input"]).any():
        handles.append(plt.Line2D([], [], color="k", linestyle="--", linewidth=0.8, label="input probe"))
    fig.legend(handles=handles, title="width (mean over seeds)" if drawn else None, fontsize=7,
               title_fontsize=7, loc="outside right upper")
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
            raise KeyError(f"datasets[{i}] lacks attrs['base_accuracy'] "
                           "(from repatlas.probes.pruning_experiment)")
        for change, inside in zip(np.asarray(ds["accuracy_change"].values, dtype=float),
                                  np.asarray(ds["inside"].values, dtype=bool)):
            rows.append({**{k: cell[k] for k in _CELL_KEYS}, "change": change,
                         "where": "inside" if inside else "outside",
                         "base": float(ds.attrs["base_accuracy"])})
    df = pd.DataFrame(rows, columns=[*_CELL_KEYS, "change", "where", "base"])
    ns = sorted({c["n"] for c in cells})
    models_per_n = {n: sorted({(c["depth"], c["width"]) for c in cells if c["n"] == n}) for n in ns}
    # 1.3 in per architecture, the whole within MAX_INCHES (tick labels need ≥ 0.8 in: ≤ 15 models)
    width = min(max(5.0, 1.3 * sum(map(len, models_per_n.values())) + 3), MAX_INCHES - 0.2)
    fig, axes = plt.subplots(1, len(ns), figsize=(width, 3.8),
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
        ax.set_xticks(range(len(models)),
                      [f"{_model_label(d, w)}\nfull {b:.3f}" for (d, w), b in zip(models, base)],
                      fontsize=7)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_xlabel("architecture (d = depth, w = width)")
        if len(ns) > 1:
            ax.set_title(f"n = {n} training examples", fontsize=9)
    axes[0, 0].set_ylabel("test accuracy change\n(block removed − full model)")
    handles = [plt.Line2D([], [], color=_SIDE_COLOURS["inside"], marker="o", linestyle="none",
                          label="inside a block"),
               plt.Line2D([], [], color=_SIDE_COLOURS["outside"], marker="o", linestyle="none",
                          label="outside blocks"),
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
        f"T = mean (error_A − error_B)² = {float(a['statistic']):.4g}, "
        f"permutation p = {float(a['p_value']):.3g} "
        f"({int(a['n_permutations'])} {kind} reassignments of seeds; "
        f"smallest attainable p = {float(a['min_p']):.2g})\n"
        f"{s_a} seeds of {label_a}, {s_b} of {label_b}; mean accuracy {float(ds['mean_accuracy_a']):.3f} vs "
        f"{float(ds['mean_accuracy_b']):.3f}; disagreement between architectures "
        f"{float(ds['disagreement_between']):.3f}, within {within}",
        fontsize=9,
    )
    return fig


