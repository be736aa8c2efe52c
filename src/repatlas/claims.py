"""The claims ledger: which of each paper's headline claims held on this run, with the evidence.

Every study has a registry entry (``REGISTRY[study]``): a list of :class:`Claim`, each a short
sentence from the paper (../shared/references.md) and a pure evaluation function. An evaluator
takes the study's result files already read (``{name: DataFrame or xarray.Dataset, or None when
the config did not produce that file}``) and returns one :class:`Evaluation` per scope (e.g. per
architecture or per data set): the statistic, its value, the rule it is compared with and a
verdict, one of ``VERDICTS``:

* ``holds``: the whole interval estimate ± 2 standard errors satisfies the rule;
* ``does not hold``: none of it does;
* ``inconclusive``: part of it does, or the evidence cannot decide, with the reason (too few
  seeds or widths, models below the required accuracy, the measure not the paper's, not run).

Where a study already judges its claims (mitosis' ``claim_*`` columns, the ensembles summary's
``verdict`` column, the infinite study's ``one_over_width`` attr), the ledger reads that verdict
instead of recomputing it, so the ledger and the study's own tables cannot disagree.
:func:`ledger` turns a study's evaluations into the table written to
``results/claims/<study>.csv``; :func:`what_reproduces` renders all ledgers as the README's
"What reproduces" table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Callable

import numpy as np
import pandas as pd

from repatlas.ensemble_claims import TOLERANCE

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)
Z = 2.0  # half-width of the interval estimate, in standard errors
COLUMNS = ("study", "claim", "sentence", "scope", "statistic", "value", "se", "rule", "verdict", "reason",
           "seeds", "measure", "test_accuracy", "config_hash", "artifacts")


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One verdict on one claim in one scope ("" when the claim has a single scope)."""

    statistic: str
    value: float
    rule: str
    verdict: str
    reason: str = ""
    se: float = float("nan")
    seeds: int = 0
    measure: str = ""
    test_accuracy: float = float("nan")
    scope: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}; got {self.verdict!r}")


@dataclasses.dataclass(frozen=True)
class Claim:
    """A paper's claim: an id, the sentence, the result files it reads, its evaluator."""

    id: str
    sentence: str
    inputs: tuple[str, ...]
    evaluate: Callable[..., list[Evaluation]]


def _not_run(name: str) -> str:
    return f"{name} not produced by this config"


def interval_verdict(value: float, se: float, threshold: float, *, above: bool) -> tuple[str, str]:
    """Verdict on ``value > threshold`` (``above``) or ``value <= threshold`` from value ± Z·se.

    ``above``: holds when the lower end exceeds the threshold, does not hold when the upper end
    does not; otherwise (or with an unknown se) inconclusive. ``not above``: holds when the upper
    end is at most the threshold, does not hold when the lower end exceeds it.
    """
    if not np.isfinite(value):
        return INCONCLUSIVE, "no finite value"
    if not np.isfinite(se):
        return INCONCLUSIVE, "one value: no standard error"
    lo, hi = value - Z * se, value + Z * se
    if above:
        return (HOLDS, "") if lo > threshold else (FAILS, "") if hi <= threshold else (
            INCONCLUSIVE, f"effect below noise: {value:.3g} ± {Z:g}·{se:.2g} straddles {threshold:g}")
    return (HOLDS, "") if hi <= threshold else (FAILS, "") if lo > threshold else (
        INCONCLUSIVE, f"effect below noise: {value:.3g} ± {Z:g}·{se:.2g} straddles {threshold:g}")


def _mean_se(values) -> tuple[float, float, int]:
    """Mean, standard error (sd / √k; NaN for one value) and count of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se, len(v)


# ----------------------------------------------------------------------------- wide vs deep
# Block structure in a model that has not learned the task proves nothing: every model a
# wide-vs-deep verdict reads must reach this test accuracy (five times chance on 10 classes).
MIN_TEST_ACCURACY = 0.5


def _block_fraction(table):
    return table["block_layers"] / table["n_layers"]


def _accuracy_gate(rows) -> tuple[float, str]:
    """The lowest test accuracy of the models a verdict reads, and a reason if it is too low."""
    if "test_accuracy" not in rows or rows["test_accuracy"].isna().all():
        return float("nan"), "test accuracy not recorded"
    acc = float(rows["test_accuracy"].min())
    if acc < MIN_TEST_ACCURACY:
        return acc, f"models not trained to the required accuracy (lowest {acc:.3f} < {MIN_TEST_ACCURACY})"
    return acc, ""


def _blocks_grow(blocks, axis: str, fixed: str, pick_fixed) -> list[Evaluation]:
    """Paired (by seed) difference in the fraction of layers inside PC1-dominated blocks between
    the largest and smallest value of `axis`, at the largest n and `pick_fixed` of `fixed`."""
    stat = (f"fraction of layers in PC1-dominated blocks, largest minus smallest {axis} "
            f"(paired by seed, at the largest n and {pick_fixed.__name__} {fixed})")
    rule = "difference > 0"
    if blocks is None:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, _not_run("results/widedeep/blocks.csv"))]
    t = blocks[blocks["n"] == blocks["n"].max()]
    t = t[t[fixed] == pick_fixed(t[fixed])]
    values = sorted(t[axis].unique())
    if len(values) < 2:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, f"one {axis} in the grid")]
    frac = t.assign(frac=_block_fraction(t)).pivot_table(index="seed", columns=axis, values="frac")
    mean, se, k = _mean_se((frac[values[-1]] - frac[values[0]]).values)
    verdict, reason = interval_verdict(mean, se, 0.0, above=True)
    acc, low = _accuracy_gate(t[t[axis].isin([values[0], values[-1]])])
    if low and verdict != INCONCLUSIVE:
        verdict, reason = INCONCLUSIVE, low
    scope = f"{axis} {values[0]} → {values[-1]}, {fixed} {pick_fixed(t[fixed])}"
    return [Evaluation(stat, mean, rule, verdict, reason, se=se, seeds=k, test_accuracy=acc,
                       measure="minibatch CKA blocks with mean PC1 share ≥ min_pc1_share", scope=scope)]


def blocks_grow_with_width(blocks=None) -> list[Evaluation]:
    """Blocks grow with width at the deepest depth of the grid."""
    return _blocks_grow(blocks, "width", "depth", max)


def blocks_grow_with_depth(blocks=None) -> list[Evaluation]:
    """Blocks grow with depth at the widest width of the grid."""
    return _blocks_grow(blocks, "depth", "width", max)


def blocks_unique_to_seed(blocks=None) -> list[Evaluation]:
    """Cross-seed CKA outside the blocks minus inside them, over models with blocks and seed pairs."""
    stat = "cross-seed CKA outside minus inside the blocks (mean over models with blocks)"
    rule = "difference > 0"
    if blocks is None:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, _not_run("results/widedeep/blocks.csv"))]
    if "seed_cka_inside" not in blocks:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE,
                           "no cross-seed CKA (cka.across_seeds off or one seed)")]
    t = blocks[np.isfinite(blocks["seed_cka_inside"]) & np.isfinite(blocks["seed_cka_outside"])]
    if len(t) < 2:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE,
                           f"{len(t)} model(s) with blocks and a seed pair; need 2")]
    mean, se, _ = _mean_se((t["seed_cka_outside"] - t["seed_cka_inside"]).values)
    verdict, reason = interval_verdict(mean, se, 0.0, above=True)
    acc, low = _accuracy_gate(t)
    if low and verdict != INCONCLUSIVE:
        verdict, reason = INCONCLUSIVE, low
    return [Evaluation(stat, mean, rule, verdict, reason, se=se, seeds=int(t["seed"].nunique()),
                       test_accuracy=acc, measure="minibatch CKA across seeds", scope=f"{len(t)} models")]


PC1_COLLAPSE = 0.5  # "collapses": the block's CKA without PC1 is at most this fraction of its CKA


def blocks_are_first_pc(blocks=None) -> list[Evaluation]:
    """Largest block's CKA with PC1 projected out ÷ its CKA, mean over models with blocks."""
    stat = "largest block's CKA without PC1 ÷ with it (mean over models with blocks)"
    rule = f"≤ {PC1_COLLAPSE}"
    if blocks is None:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, _not_run("results/widedeep/blocks.csv"))]
    if "largest_cka_without_pc1" not in blocks:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, "no first-PC analysis in blocks.csv")]
    t = blocks[np.isfinite(blocks["largest_cka_without_pc1"]) & np.isfinite(blocks["largest_cka"])]
    if len(t) < 2:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, f"{len(t)} model(s) with blocks; need 2")]
    mean, se, _ = _mean_se((t["largest_cka_without_pc1"] / t["largest_cka"]).values)
    verdict, reason = interval_verdict(mean, se, PC1_COLLAPSE, above=False)
    acc, low = _accuracy_gate(t)
    if low and verdict != INCONCLUSIVE:
        verdict, reason = INCONCLUSIVE, low
    return [Evaluation(stat, mean, rule, verdict, reason, se=se, seeds=int(t["seed"].nunique()),
                       test_accuracy=acc, measure="full-data linear CKA before/after projecting out PC1",
                       scope=f"{len(t)} models")]


def errors_differ(errors=None) -> list[Evaluation]:
    """Per compared pair of errors.csv: the permutation test's p-value, read only where the study
    raised no warning (accuracies matched within 1 point, enough seeds to reach p ≤ 0.05)."""
    stat = "permutation-test p-value of per-example errors, A vs B over seeds"
    rule = "p ≤ 0.05"
    if errors is None or not len(errors):
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, _not_run("results/widedeep/errors.csv"))]
    out = []
    for _, r in errors.iterrows():
        warning = r["warning"] if isinstance(r["warning"], str) else ""
        p = float(r["p_value"])
        verdict, reason = ((INCONCLUSIVE, warning) if warning else (HOLDS, "") if p <= 0.05 else (FAILS, ""))
        out.append(Evaluation(stat, p, rule, verdict, reason, seeds=int(min(r["seeds_a"], r["seeds_b"])),
                              test_accuracy=float(min(r["mean_accuracy_a"], r["mean_accuracy_b"])),
                              measure="per-example errors, permutation test",
                              scope=f"{r['arch_a']} vs {r['arch_b']}"))
    return out


# ----------------------------------------------------------------------------- Neural Redshift
RELU_FAMILY = ("relu", "gelu", "swish", "selu")
RELU_CEILING = 0.25  # paper-convention Fourier complexity; the paper's ReLU heatmaps: 0.13-0.2
WHITE_NOISE_FRACTION = 0.9  # "reaches white noise": at least this fraction of the unbiased reference
# Below 64 points per axis aliasing inflates the paper's Fourier measure (white noise 0.573 at
# R = 16 vs 0.542 at 300; tanh, A = 10: 0.54 of white noise at R = 64 vs 0.33 at 300).
MIN_GRID_SIZE = 64


def _paper_fourier(scale_sweep, stat, rule, path="results/complexity/scale.nc"):
    """The sweep's Fourier measure, or an inconclusive Evaluation saying why it cannot be read."""
    if scale_sweep is None:
        return None, Evaluation(stat, np.nan, rule, INCONCLUSIVE, _not_run(path))
    if "fourier" not in scale_sweep:
        return None, Evaluation(stat, np.nan, rule, INCONCLUSIVE, "Fourier measure not computed")
    convention = scale_sweep.attrs.get("settings_fourier_convention", "")
    if convention != "paper":
        return None, Evaluation(stat, np.nan, rule, INCONCLUSIVE,
                                f"Fourier convention {convention!r}, not the paper's",
                                measure=f"fourier ({convention})")
    R = int(scale_sweep.attrs.get("R", 0))
    if R < MIN_GRID_SIZE:
        return None, Evaluation(stat, np.nan, rule, INCONCLUSIVE,
                                f"grid too coarse for the paper's measure (R = {R} < {MIN_GRID_SIZE})",
                                measure=f"fourier (paper convention, R = {R})")
    return scale_sweep["fourier"], None


def _plain(fourier):
    """The plain MLPs (no residual, LayerNorm or gating) at the sweep's first width."""
    variant = "plain" if "plain" in fourier["variant"].values else fourier["variant"].values[0]
    return fourier.sel(variant=variant).isel(width=0)


def relu_family_stays_simple(scale=None) -> list[Evaluation]:
    """Highest seed-mean Fourier complexity of ReLU-family MLPs over A ≤ 100 and every depth."""
    stat = "highest seed-mean Fourier complexity, ReLU family, A ≤ 100, every depth"
    rule = f"≤ {RELU_CEILING}"
    fourier, missing = _paper_fourier(scale, stat, rule)
    if missing:
        return [missing]
    family = [a for a in fourier["activation"].values if str(a) in RELU_FAMILY]
    if not family:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, "no ReLU-family activation in the sweep")]
    f = _plain(fourier).sel(activation=family, scale=fourier["scale"] <= 100)
    k = int(f.sizes["seed"])
    mean = f.mean("seed")
    se = f.std("seed", ddof=1) / np.sqrt(k) if k > 1 else mean * np.nan
    upper = (mean + Z * se).max().item()
    value = float(mean.max())
    measure = f"fourier (paper convention, R = {scale.attrs.get('R', '?')})"
    scope = ", ".join(map(str, family))
    if k < 2:
        return [Evaluation(stat, value, rule, INCONCLUSIVE, "one seed: no standard error", seeds=k,
                           measure=measure, scope=scope)]
    at_max = mean.argmax(...)
    se_max = float(se.isel(at_max))
    if upper <= RELU_CEILING:
        verdict, reason = HOLDS, ""
    elif float(((mean - Z * se) > RELU_CEILING).any()):
        verdict, reason = FAILS, ""
    else:
        verdict, reason = INCONCLUSIVE, f"effect below noise: highest cell within {Z:g} SE of {RELU_CEILING}"
    return [Evaluation(stat, value, rule, verdict, reason, se=se_max, seeds=k, measure=measure, scope=scope)]


def sin_reaches_white_noise(scale=None) -> list[Evaluation]:
    """sin MLPs' Fourier complexity at the largest A and depth, as a fraction of white noise."""
    stat = "sin Fourier complexity ÷ white-noise reference at the largest A and depth"
    rule = f"≥ {WHITE_NOISE_FRACTION}"
    fourier, missing = _paper_fourier(scale, stat, rule)
    if missing:
        return [missing]
    if "sin" not in fourier["activation"].values:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, "sin not in the sweep")]
    reference = fourier.attrs.get("unbiased_reference")
    if reference is None:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, "no white-noise reference in the sweep")]
    f = _plain(fourier).sel(activation="sin")
    a, d = float(f["scale"].max()), int(f["depth"].max())
    mean, se, k = _mean_se(f.sel(scale=a, depth=d).values / float(reference))
    verdict, reason = interval_verdict(mean, se, WHITE_NOISE_FRACTION, above=True)
    return [Evaluation(stat, mean, rule, verdict, reason, se=se, seeds=k, scope=f"A = {a:g}, depth {d}",
                       measure=f"fourier (paper convention, R = {scale.attrs.get('R', '?')})")]


WIDTH_TOLERANCE = 0.05  # "no effect of width": widest − narrowest within ± this (paper convention)


def _paired_effect(sweep, name: str, stat: str, rule: str, a: dict, b: dict, judge) -> list[Evaluation]:
    """Per activation of the ``name`` sweep: Fourier complexity at ``a`` minus at ``b`` (one
    coordinate each, paired by seed) at the largest A and the first depth, the other of width /
    variant at its first value (plain where swept); ``judge(mean, se)`` gives the verdict."""
    fourier, missing = _paper_fourier(sweep, stat, rule, f"results/complexity/{name}.nc")
    if missing:
        return [missing]
    f = fourier.sel(scale=float(fourier["scale"].max())).isel(depth=0)
    if "variant" not in a:
        f = f.sel(variant="plain" if "plain" in f["variant"].values else f["variant"].values[0])
    if "width" not in a:
        f = f.isel(width=0)
    if any(v not in f[dim].values for dim, v in {**a, **b}.items()):
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, f"{a} or {b} not in the {name} sweep")]
    out = []
    for act in f["activation"].values:
        mean, se, k = _mean_se((f.sel(activation=act, **a) - f.sel(activation=act, **b)).values)
        verdict, reason = judge(mean, se)
        out.append(Evaluation(stat, mean, rule, verdict, reason, se=se, seeds=k, scope=str(act),
                              measure=f"fourier (paper convention, R = {sweep.attrs.get('R', '?')}), "
                                      f"A = {float(fourier['scale'].max()):g}"))
    return out


def _variant_effect(variant: str, lowers: bool):
    """The claim that ``variant`` lowers (or raises) complexity relative to plain MLPs."""
    def evaluate(variant_sweep=None) -> list[Evaluation]:
        return _paired_effect(variant_sweep, "variant",
                              f"Fourier complexity, {variant} − plain (paired by seed)",
                              "< 0" if lowers else "> 0", {"variant": variant}, {"variant": "plain"},
                              lambda m, se: interval_verdict(-m if lowers else m, se, 0.0, above=True))

    evaluate.__name__ = f"{variant}_{'lowers' if lowers else 'raises'}_complexity"
    return evaluate


def _within_tolerance(mean: float, se: float) -> tuple[str, str]:
    """Equivalence: holds when mean ± Z·se lies inside ± WIDTH_TOLERANCE, fails when outside it."""
    if not np.isfinite(se):
        return INCONCLUSIVE, "one seed: no standard error"
    lo, hi = mean - Z * se, mean + Z * se
    if -WIDTH_TOLERANCE <= lo and hi <= WIDTH_TOLERANCE:
        return HOLDS, ""
    if hi < -WIDTH_TOLERANCE or lo > WIDTH_TOLERANCE:
        return FAILS, ""
    return INCONCLUSIVE, f"effect below noise: {mean:.3g} ± {Z:g}·{se:.2g} overlaps ± {WIDTH_TOLERANCE}"


def width_has_no_effect(width_sweep=None) -> list[Evaluation]:
    """Widest minus narrowest width's Fourier complexity, per activation, paired by seed."""
    stat = "Fourier complexity, widest − narrowest width (paired by seed)"
    rule = f"within ± {WIDTH_TOLERANCE}"
    widths = [] if width_sweep is None else width_sweep["width"].values
    if width_sweep is not None and len(widths) < 2:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, "one width in the sweep")]
    a, b = ({"width": int(max(widths))}, {"width": int(min(widths))}) if len(widths) else ({}, {})
    return _paired_effect(width_sweep, "width", stat, rule, a, b, _within_tolerance)


# ----------------------------------------------------------------------------- infinite width
# Paired accuracy differences of a handful of test images are 0 ± 0 more often than not.
MIN_TEST_IMAGES = 100
NTK_EXPONENT, NTK_TOLERANCE = 0.5, 0.15  # relative NTK error ~ width^-1/2, slope within ± this


def gap_shrinks_as_one_over_width(cookbook_gap=None) -> list[Evaluation]:
    """The fitted exponent p of |finite-ensemble mean − NTK mean| ~ width^-p, and the study's own
    ``one_over_width`` verdict (p > 2 SE and |p − 1| ≤ 2 SE). Does not hold when p is more than
    2 SE from 1; inconclusive when the gap is not seen to shrink but p = 1 is not excluded."""
    stat = "exponent p of the gap ~ width^-p (weighted fit over widths)"
    rule = "p > 2 SE and |p − 1| ≤ 2 SE"
    if cookbook_gap is None:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, _not_run("results/infinite/cookbook_gap.nc"))]
    attrs = cookbook_gap.attrs
    n = int(cookbook_gap.sizes["width"])
    pairs = int(cookbook_gap["pairs"].min()) if "pairs" in cookbook_gap else 0
    if "one_over_width" not in attrs:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, f"{n} width(s); the fit needs 3", seeds=pairs)]
    p, se = float(attrs["exponent"]), float(attrs["exponent_se"])
    if int(attrs["one_over_width"]):
        verdict, reason = HOLDS, ""
    elif abs(p - 1) > Z * se:
        verdict, reason = FAILS, ""
    else:
        verdict, reason = INCONCLUSIVE, f"gap not seen to shrink: p = {p:.2g} within {Z:g} SE of 0"
    return [Evaluation(stat, p, rule, verdict, reason, se=se, seeds=pairs, scope=f"{n} widths",
                       measure=f"cookbook gap ({attrs.get('architecture', '?')}, "
                               f"{attrs.get('activation', '?')})")]


def ntk_converges_as_inverse_sqrt_width(ntk_convergence=None) -> list[Evaluation]:
    """Per seed, the log-log slope of the empirical NTK's relative error against width; the claim
    holds when −slope ± 2 SE lies within NTK_EXPONENT ± NTK_TOLERANCE."""
    stat = "−slope of log relative NTK error vs log width (mean over seeds)"
    rule = f"{NTK_EXPONENT} ± {NTK_TOLERANCE}"
    if ntk_convergence is None:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, _not_run("results/infinite/ntk_convergence.nc"))]
    err = ntk_convergence["relative_error"].transpose("width", "seed")
    widths = np.log(err["width"].values.astype(np.float64))
    if len(widths) < 3:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, f"{len(widths)} width(s); need 3",
                           seeds=int(err.sizes["seed"]))]
    slopes = [-np.polyfit(widths, np.log(err.values[:, j]), 1)[0] for j in range(err.sizes["seed"])]
    mean, se, k = _mean_se(slopes)
    lo, hi = NTK_EXPONENT - NTK_TOLERANCE, NTK_EXPONENT + NTK_TOLERANCE
    if not np.isfinite(se):
        verdict, reason = INCONCLUSIVE, "one seed: no standard error"
    elif lo <= mean - Z * se and mean + Z * se <= hi:
        verdict, reason = HOLDS, ""
    elif mean + Z * se < lo or mean - Z * se > hi:
        verdict, reason = FAILS, ""
    else:
        verdict, reason = INCONCLUSIVE, (f"effect below noise: {mean:.3g} ± {Z:g}·{se:.2g} "
                                         "overlaps the band's edge")
    return [Evaluation(stat, mean, rule, verdict, reason, se=se, seeds=k, measure="relative Frobenius error",
                       scope=f"widths {int(err['width'].min())}–{int(err['width'].max())}")]


def finite_approaches_ntk(regression=None) -> list[Evaluation]:
    """Centred finite networks (f − f0): distance of test accuracy from the NTK prediction at the
    same time t, narrowest minus widest width, paired by seed."""
    stat = "|accuracy − NTK(t) accuracy|, narrowest − widest centred network (paired by seed)"
    rule = "> 0"
    if regression is None:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, _not_run("results/infinite/regression-*.nc"))]
    finite = regression["finite_accuracy"].sel(centred=1)
    widths = finite["width"].values
    if len(widths) < 2:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE, "one width")]
    ntk = float(regression["ntk_t"])
    far = (np.abs(finite.sel(width=widths.min()).values - ntk)
           - np.abs(finite.sel(width=widths.max()).values - ntk))
    mean, se, k = _mean_se(far)
    verdict, reason = interval_verdict(mean, se, 0.0, above=True)
    return [Evaluation(stat, mean, rule, verdict, reason, se=se, seeds=k, test_accuracy=ntk,
                       measure="test accuracy of MSE regression on one-hot targets",
                       scope=f"widths {int(widths.min())} → {int(widths.max())}")]


def conv_beats_fc(conv_regression=None) -> list[Evaluation]:
    """conv-GAP minus fully-connected kernel regression accuracy on the same test images, at the
    largest training set, per kernel (NNGP, NTK), with the study's paired standard error."""
    stat = "accuracy conv-GAP − FC kernel (paired over test images)"
    rule = "> 0"
    if conv_regression is None:
        return [Evaluation(stat, np.nan, rule, INCONCLUSIVE,
                           _not_run("results/infinite/conv_regression-*.nc"))]
    n, n_test = int(conv_regression["n_train"].max()), int(conv_regression.sizes["example"])
    out = []
    for kernel in conv_regression["kernel"].values:
        d = conv_regression.sel(kernel=kernel, n_train=n)
        mean, se = float(d["conv_minus_fc"]), float(d["conv_minus_fc_se"])
        verdict, reason = interval_verdict(mean, se, 0.0, above=True)
        if n_test < MIN_TEST_IMAGES and verdict != INCONCLUSIVE:
            verdict, reason = INCONCLUSIVE, f"too few test images ({n_test} < {MIN_TEST_IMAGES})"
        out.append(Evaluation(stat, mean, rule, verdict, reason, se=se, measure="kernel regression accuracy",
                              test_accuracy=float(d["accuracy"].sel(architecture="conv")),
                              scope=f"{kernel}, n_train {n}, {n_test} test images"))
    return out


# ----------------------------------------------------------------------------- mitosis
# The mitosis summary judges its claims (repatlas.mitosis.mitosis_claims, 1/0/empty per row);
# the ledger reads them per architecture: all 1 → holds, any 0 → does not hold, all empty →
# inconclusive with the reason the study leaves the claim untestable. The paper's clones are
# those of networks trained to zero training error: where a converged model of the architecture
# is above MITOSIS_ZERO_ERROR (repatlas.mitosis' "zero", 0.2 %) the verdict is inconclusive.
MITOSIS_ZERO_ERROR = 0.002
_MITOSIS_UNTESTABLE = {
    "claim_constant_critical_chunk": "fewer than 3 widths",
    "claim_clones_proportional_to_width": "fewer than 3 widths",
    "claim_low_residual_corr": "no onset width, or 2c* is the whole layer above it",
    "claim_chunk_accuracy_matches_full": "no onset width (critical chunk never constant)",
    "claim_mitosis_needs_zero_error": "no onset width, or no snapshot with training error above zero",
}


def _mitosis_column(column: str, statistic: str, rule: str):
    def evaluate(summary=None) -> list[Evaluation]:
        if summary is None:
            return [Evaluation(statistic, np.nan, rule, INCONCLUSIVE,
                               _not_run("results/mitosis/summary.csv"))]
        out = []
        conv = summary[summary["regime"] == "converged"]
        for arch, rows in conv.groupby("arch", sort=True):
            values = rows[column].dropna() if column in rows else rows.iloc[:0]
            if column == "claim_clones_proportional_to_width":
                value = float(rows["clones_width_slope"].iloc[0])
            elif column == "claim_constant_critical_chunk":
                value = float(rows["onset_width"].iloc[0])
            else:
                value = float(values.mean()) if len(values) else float("nan")
            worst = float(rows["train_error"].max())
            if not len(values):
                verdict, reason = INCONCLUSIVE, _MITOSIS_UNTESTABLE[column]
            elif worst > MITOSIS_ZERO_ERROR:
                verdict, reason = INCONCLUSIVE, (f"models not trained to zero training error, "
                                                 f"the paper's condition "
                                                 f"(highest {worst:.3f} > {MITOSIS_ZERO_ERROR})")
            elif (values == 0).any():
                verdict, reason = FAILS, ""
            else:
                verdict, reason = HOLDS, ""
            widths = sorted(int(w) for w in rows["width"].unique())
            out.append(Evaluation(statistic, value, rule, verdict, reason,
                                  seeds=int(rows["model_seed"].nunique()),
                                  measure="in-sample R² critical chunk (repatlas.mitosis)",
                                  test_accuracy=float(rows["test_accuracy"].min()),
                                  scope=f"{arch}, widths {widths[0]}–{widths[-1]}"))
        return out or [Evaluation(statistic, np.nan, rule, INCONCLUSIVE, "no converged model")]

    evaluate.__name__ = f"mitosis_{column}"
    return evaluate


# ----------------------------------------------------------------------------- ensembles
# The ensembles summary judges every (data, regime, method) row (repatlas.ensemble_claims.judge);
# each ledger claim selects the rows it covers and reads their verdicts, one scope per data set.
_ENSEMBLE_VERDICTS = {"holds": HOLDS, "fails": FAILS, "inconclusive": INCONCLUSIVE}


def _ensembles_untrained(summary, row) -> str:
    """Why the single models of ``row``'s (data, regime) are too poorly trained for its claims, or "".

    Multi-view data in the feature regime: the theorems are about networks that learn every
    multi-view example, so a single model's test error above μ (it errs on multi-view examples
    too) voids them. The NTK regime (either data) and the study dataset: single-model test
    accuracy below MIN_TEST_ACCURACY (as for wide vs deep) — NTK models are not expected to learn
    every view, so their error above μ is the regime's prediction, not a failed fit."""
    single = summary[(summary["data"] == row["data"]) & (summary["regime"] == row["regime"])
                     & (summary["method"] == "single")]
    if not len(single):
        return ""
    error, mu = float(single["test_error_mean"].iloc[0]), float(row["mu"])
    multiview_feature = np.isfinite(mu) and row["regime"] == "feature"
    if multiview_feature and error > mu:
        return (f"models not trained: single-model test error {error:.3f} > μ = {mu:g} "
                "(errs on multi-view examples)")
    if not multiview_feature and 1 - error < MIN_TEST_ACCURACY:
        return (f"models not trained to the required accuracy (single-model test accuracy {1 - error:.3f} "
                f"< {MIN_TEST_ACCURACY})")
    return ""


def _ensembles_rows(regime: str, method: str, multiview: bool):
    def evaluate(summary=None) -> list[Evaluation]:
        stat = f"test error of {method} ({regime} regime, mean over models)"
        if summary is None:
            return [Evaluation(stat, np.nan, "", INCONCLUSIVE, _not_run("results/ensembles/summary.csv"))]
        rows = summary[(summary["regime"] == regime) & (summary["method"] == method)
                       & (np.isfinite(summary["mu"]) == multiview)]
        out = []
        for _, r in rows.iterrows():
            v = str(r["verdict"]) if isinstance(r["verdict"], str) else ""
            verdict = _ENSEMBLE_VERDICTS.get(v, INCONCLUSIVE)
            se = float(r["test_error_se"])
            reason = ("" if v in ("holds", "fails") else v if v and v != "inconclusive"
                      else "effect below noise: mean ± 2 SE straddles the tolerance" if np.isfinite(se)
                      else "one value: no standard error")
            untrained = _ensembles_untrained(summary, r)
            if untrained and verdict != INCONCLUSIVE:
                verdict, reason = INCONCLUSIVE, untrained
            judged_in_mu = multiview and regime == "feature"  # the theorems' rows; NTK rows have no μ bound
            rule = str(r["prediction"]) + (f" [judged with tolerance {TOLERANCE:g}μ]" if judged_in_mu else "")
            out.append(Evaluation(stat, float(r["test_error_mean"]), rule, verdict, reason,
                                  se=se, seeds=int(r["count"]), scope=str(r["data"]),
                                  measure="test error", test_accuracy=1 - float(r["test_error_mean"])))
        data = "multi-view data" if multiview else "the study dataset"
        missing = f"no {method} result in the {regime} regime on {data}"
        return out or [Evaluation(stat, np.nan, "", INCONCLUSIVE, missing)]

    evaluate.__name__ = f"ensembles_{regime}_{method}"
    return evaluate


# ----------------------------------------------------------------------------- registry
REGISTRY: dict[str, list[Claim]] = {
    "wide_deep": [
        Claim("blocks_with_width", "Block structure appears as width grows.", ("blocks",),
              blocks_grow_with_width),
        Claim("blocks_with_depth", "Block structure appears as depth grows.", ("blocks",),
              blocks_grow_with_depth),
        Claim("blocks_unique_to_seed", "Inside the block structure representations are unique to each seed; "
              "outside it they are shared.", ("blocks",), blocks_unique_to_seed),
        Claim("blocks_are_first_pc", "A block is its first principal component: without PC1 the block's CKA "
              "collapses.", ("blocks",), blocks_are_first_pc),
        Claim("errors_differ", "Wide and deep models of equal accuracy make statistically different "
              "per-example errors.", ("errors",), errors_differ),
    ],
    "redshift": [
        Claim("relu_low_frequency", "ReLU-family MLPs stay low-frequency (Fourier complexity ≤ 0.25, paper "
              "convention) at every weight magnitude A ≤ 100 and depth.", ("scale",),
              relu_family_stays_simple),
        Claim("sin_white_noise", "sin MLPs reach white-noise complexity at large weight magnitude.",
              ("scale",), sin_reaches_white_noise),
        Claim("residual_lowers", "Residual connections lower complexity.", ("variant_sweep",),
              _variant_effect("residual", lowers=True)),
        Claim("layernorm_lowers", "LayerNorm lowers complexity.", ("variant_sweep",),
              _variant_effect("layernorm", lowers=True)),
        Claim("gating_raises", "Multiplicative gating raises complexity.", ("variant_sweep",),
              _variant_effect("gating", lowers=False)),
        Claim("width_no_effect", "Width has no effect on complexity.", ("width_sweep",), width_has_no_effect),
    ],
    "infinite": [
        Claim("gap_one_over_width", "The finite-ensemble mean approaches the NTK mean as 1/width.",
              ("cookbook_gap",), gap_shrinks_as_one_over_width),
        Claim("ntk_inverse_sqrt_width", "A finite network's empirical NTK approaches the analytic NTK as "
              "1/√width.", ("ntk_convergence",), ntk_converges_as_inverse_sqrt_width),
        Claim("finite_approaches_ntk", "Centred finite networks' predictions approach the NTK prediction as "
              "width grows.", ("regression",), finite_approaches_ntk),
        Claim("conv_beats_fc", "Conv kernels with global average pooling beat fully-connected kernels "
              "on images (Neural Tangents paper).", ("conv_regression",), conv_beats_fc),
    ],
    "mitosis": [
        Claim("constant_critical_chunk", "Above an onset width the critical chunk size is constant.",
              ("summary",),
              _mitosis_column("claim_constant_critical_chunk",
                              "onset width (critical chunk within 1.5× above it)",
                              "an onset exists")),
        Claim("clones_proportional_to_width", "The number of clones grows linearly with width.", ("summary",),
              _mitosis_column("claim_clones_proportional_to_width",
                              "log-log slope of clones vs width above the onset",
                              "onset exists and slope 1 ± 0.25")),
        Claim("clones_differ_by_noise", "Clones differ by independent noise (low residual correlation).",
              ("summary",), _mitosis_column("claim_low_residual_corr",
                                            "share of models above the onset with low residual correlation "
                                            "at 2c*",
                                            "every model ≤ 0.15")),
        Claim("chunk_matches_full_layer", "A critical-size chunk classifies as well as the whole layer.",
              ("summary",), _mitosis_column("claim_chunk_accuracy_matches_full",
                                            "share of models above the onset whose chunk accuracy "
                                            "is within 0.02",
                                            "every model")),
        Claim("needs_zero_error", "Mitosis needs training to zero training error.", ("summary",),
              _mitosis_column("claim_mitosis_needs_zero_error",
                              "share of runs whose clones grew ≥ 1.5× on reaching zero training error",
                              "every run")),
    ],
    "ensembles": [
        Claim("ntk_ensemble_helps", "In the NTK regime an ensemble beats a single model.", ("summary",),
              _ensembles_rows("ntk", "ensemble", multiview=False)),
        Claim("ntk_kd_does_not_help", "In the NTK regime distillation does not transfer the ensemble's gain.",
              ("summary",), _ensembles_rows("ntk", "kd", multiview=False)),
        Claim("ensemble_helps", "With only the seed differing, an ensemble beats a single model.",
              ("summary",), _ensembles_rows("feature", "ensemble", multiview=False)),
        Claim("kd_keeps_gain", "Distilling the ensemble keeps most of its gain.", ("summary",),
              _ensembles_rows("feature", "kd", multiview=False)),
        Claim("self_kd_helps", "Self-distillation helps, less than distilling the ensemble.", ("summary",),
              _ensembles_rows("feature", "self_kd", multiview=False)),
        Claim("average_does_not_help", "Training the average of the models does not help.", ("summary",),
              _ensembles_rows("feature", "average", multiview=False)),
        Claim("multiview_single", "On multi-view data a single model errs on about half the single-view "
              "examples (Thm 1).", ("summary",), _ensembles_rows("feature", "single", multiview=True)),
        Claim("multiview_ensemble", "On multi-view data an ensemble errs ≪ μ (Thm 2).", ("summary",),
              _ensembles_rows("feature", "ensemble", multiview=True)),
        Claim("multiview_self_kd", "On multi-view data self-distillation ≈ an ensemble of two (Thm 4).",
              ("summary",), _ensembles_rows("feature", "self_kd", multiview=True)),
        Claim("multiview_kd", "On multi-view data KD from the ensemble errs ≪ μ (Thm 3).", ("summary",),
              _ensembles_rows("feature", "kd", multiview=True)),
        Claim("multiview_ntk_ensemble_helps", "On multi-view data in the NTK regime an ensemble beats a "
              "single model.", ("summary",), _ensembles_rows("ntk", "ensemble", multiview=True)),
        Claim("multiview_ntk_kd_does_not_help", "On multi-view data in the NTK regime distillation does not "
              "transfer the ensemble's gain.", ("summary",), _ensembles_rows("ntk", "kd", multiview=True)),
    ],
}


def config_hash(config: dict) -> str:
    """First 12 hex digits of the SHA-256 of the config as sorted JSON: which run a ledger is of."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def ledger(study: str, results: dict, *, config_hash: str = "", artifacts: dict | None = None):
    """The claims ledger of one study as a DataFrame (``COLUMNS``): every claim of
    ``REGISTRY[study]`` evaluated on ``results`` ({input name: content, None or absent when not
    produced}); ``artifacts`` ({input name: path}) fills the artifacts column."""
    if study not in REGISTRY:
        raise ValueError(f"unknown study {study!r}; expected one of {', '.join(REGISTRY)}")
    artifacts = artifacts or {}
    rows = []
    for claim in REGISTRY[study]:
        paths = ";".join(str(artifacts[k]) for k in claim.inputs if k in artifacts)
        for e in claim.evaluate(**{k: results.get(k) for k in claim.inputs}):
            rows.append({"study": study, "claim": claim.id, "sentence": claim.sentence,
                         **dataclasses.asdict(e), "config_hash": config_hash, "artifacts": paths})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _cell(value, se) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:.3g} ± {se:.2g}" if np.isfinite(se) else f"{value:.3g}"


def what_reproduces(table, *, config: str, hardware: str) -> str:
    """The README's "What reproduces" table (markdown) from the concatenated ledgers."""
    lines = [f"What reproduces with `{config}` on {hardware} (config hash "
             f"{', '.join(sorted(set(map(str, table['config_hash']))))}; "
             "generated from results/claims/*.csv):", "",
             "| study | claim | scope | statistic | value ± SE | rule | verdict | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    def text(value) -> str:  # an empty CSV cell reads back as NaN; "|" would end the cell
        return value.replace("|", "\\|") if isinstance(value, str) else ""

    for _, r in table.iterrows():
        verdict = r["verdict"] + (f" ({text(r['reason'])})" if text(r["reason"]) else "")
        cells = [text(r["study"]), text(r["sentence"]), text(r["scope"]), text(r["statistic"]),
                 _cell(float(r["value"]), float(r["se"])), text(r["rule"]), verdict, str(int(r["seeds"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
