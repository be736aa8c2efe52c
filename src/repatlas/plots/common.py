"""What every study's figures share: saving (PNG + PDF, atomic), layer-labelled heatmaps with the
layer 0 at the bottom left, one labelled colour bar per shared scale, block outlines and title
wrapping.

Sizes: figures are saved at `DPI` = 150 and kept ≤ `MAX_INCHES` (2000 px) on the long side unless
a grid needs more; `facet_inches` shrinks facets of a large grid to fit.
"""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")  # figures are files; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from repatlas.io import atomic_path  # noqa: E402

DPI = 150
MAX_INCHES = 2000 / DPI  # long side of a figure at DPI: 2000 px
MAX_TICK_LABELS = 8  # more layers than this: label every k-th so labels never touch
CKA_CMAP = "magma"
CKA_LABEL = "linear CKA"


def save_figure(fig, *paths) -> None:
    """Save a figure to each path atomically (format from the suffix) at `DPI` and close it."""
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], bbox_inches="tight", dpi=DPI)
    plt.close(fig)


def wrap(text: str | None, width: int) -> str | None:
    """`text` broken into lines of at most `width` characters (existing line breaks kept)."""
    if not text:
        return text
    return "\n".join(textwrap.fill(line, width) for line in str(text).split("\n"))


def title_width(fig_width_inches: float, fontsize: float = 10) -> int:
    """Characters of a `fontsize` title that fit across a figure `fig_width_inches` wide (a proportional
    font averages about 0.55 em per character)."""
    return max(30, int(fig_width_inches * 72 / (0.55 * fontsize)))


def facet_inches(rows: int, cols: int, *, preferred: float, extra_width: float = 1.5,
                 extra_height: float = 1.0) -> float:
    """Side of a square facet: `preferred`, shrunk so `rows` × `cols` facets plus margins fit in
    `MAX_INCHES` on the long side (never below 1.6 in, where tick labels would collide)."""
    fit = min((MAX_INCHES - extra_width) / cols, (MAX_INCHES - extra_height) / rows)
    return max(1.6, min(preferred, fit))


def layer_ticks(n: int, max_labels: int = MAX_TICK_LABELS) -> np.ndarray:
    """Indices of the layers to label: every k-th from 0 with k the smallest step giving at most
    `max_labels` labels, and the last layer when it fits without crowding."""
    step = max(1, int(np.ceil(n / max_labels)))
    ticks = list(range(0, n, step))
    if ticks[-1] != n - 1 and n - 1 - ticks[-1] >= step / 2:
        ticks.append(n - 1)
    return np.asarray(ticks, dtype=int)


def layer_names(da, dim: str, n: int) -> list[str]:
    """Names of the `n` layers along `dim` of a DataArray (its coordinate), else their indices."""
    if hasattr(da, "coords") and dim in getattr(da, "coords", {}):
        names = [str(v) for v in np.asarray(da[dim].values)]
        if len(names) == n:
            return names
    return [str(i) for i in range(n)]


def tick_text(names, ticks, max_chars: int = 8) -> list[str]:
    """Tick labels: the layer names when every one is short enough for a facet's margin (ResNet
    names such as "block12" are), else the layer indices."""
    names = list(names)
    if all(len(names[i]) <= max_chars for i in ticks):
        return [names[i] for i in ticks]
    return [str(i) for i in ticks]


def layer_heatmap(ax, values, *, x_names=None, y_names=None, vmin: float = 0.0, vmax: float = 1.0,
                  cmap: str = CKA_CMAP, max_labels: int = MAX_TICK_LABELS, fontsize: float = 7):
    """A layer × layer matrix as a square heatmap with layer 0 at the bottom left (as in Nguyen et
    al.'s figures): row i of `values` (layer_a) is drawn at height n − 1 − i, column j (layer_b)
    at x = j; cell (i, j) spans [j, j + 1] × [n − 1 − i, n − i]. NaN cells stay blank.

    Every k-th layer is labelled (`layer_ticks`) with its name or index (`tick_text`); names on
    the x axis stand upright so neighbours never touch. No colour bar: a figure adds one per
    shared scale (`colour_bar`). Returns the QuadMesh.
    """
    values = np.asarray(values, dtype=float)
    n_y, n_x = values.shape
    sns.heatmap(values[::-1], ax=ax, vmin=vmin, vmax=vmax, cmap=cmap, square=True, cbar=False,
                xticklabels=False, yticklabels=False)
    x_names = list(x_names) if x_names is not None else [str(j) for j in range(n_x)]
    y_names = list(y_names) if y_names is not None else [str(i) for i in range(n_y)]
    xt, yt = layer_ticks(n_x, max_labels), layer_ticks(n_y, max_labels)
    x_text = tick_text(x_names, xt)
    ax.set_xticks(xt + 0.5, x_text, fontsize=fontsize, rotation=0 if all(t.isdigit() for t in x_text) else 90)
    ax.set_yticks(n_y - 1 - yt + 0.5, tick_text(y_names, yt), fontsize=fontsize, rotation=0)
    ax.tick_params(length=2, pad=1)
    return ax.collections[0]


def outline_blocks(ax, spans, n: int, colour: str = "cyan") -> None:
    """Outline each inclusive (start, end) layer block on a `layer_heatmap` of `n` layers."""
    for start, end in spans:  # row i is drawn at height n − 1 − i
        ax.add_patch(Rectangle((start, n - 1 - end), end - start + 1, end - start + 1, fill=False,
                               edgecolor=colour, linewidth=1.2, gid="block"))


def colour_bar(fig, axes, *, label: str, vmin: float = 0.0, vmax: float = 1.0, cmap: str = CKA_CMAP,
               shrink: float = 0.8, location: str = "right"):
    """One labelled colour bar for every axes in `axes` that share the scale [vmin, vmax] of
    `cmap`, placed beside them (`location`) by the figure's layout, so it cannot overlap the
    title or the facets."""
    return fig.colorbar(ScalarMappable(Normalize(vmin, vmax), cmap), ax=axes, shrink=shrink, label=label,
                        fraction=0.04 if location in ("right", "left") else 0.05, pad=0.02, location=location)


def headroom(lo: float, hi: float, *, fraction: float = 0.08, minimum: float = 0.01,
             bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """Axis limits that show [lo, hi] with a margin of `fraction` of its range (at least `minimum`),
    clipped to `bounds` (e.g. an accuracy never leaves [0, 1])."""
    pad = max((hi - lo) * fraction, minimum)
    return max(bounds[0], lo - pad), min(bounds[1], hi + pad)


def log_x_ticks(ax, values) -> None:
    """Label a log-scaled x axis at the swept `values` in plain numbers (not 6×10¹ or minor ticks)."""
    ax.set_xticks(sorted(set(values)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def axes_title(ax, title: str | None, *, fontsize: float = 9) -> None:
    """Set `title` on the single axes `ax`, wrapped to its figure's width (nothing when empty)."""
    if title:
        ax.set_title(wrap(title, title_width(ax.figure.get_figwidth(), fontsize)), fontsize=fontsize)


def figure_title(fig, title: str | None, *, fontsize: float = 10, above: bool = False) -> None:
    """Set `title` as the figure's title, wrapped to the figure's width. `above=True` for a figure
    already laid out (seaborn grids run tight_layout when built): the title then sits above the
    top edge, bottom-aligned, so a wrapped second line cannot run into the facet titles
    (`save_figure`'s tight bounding box includes it)."""
    if not title:
        return
    text = wrap(title, title_width(fig.get_figwidth(), fontsize))
    if above:
        fig.suptitle(text, y=1.0, va="bottom", fontsize=fontsize)
    else:
        fig.suptitle(text, fontsize=fontsize)
