"""Allen-Zhu & Li's claims about ensembles and distillation, as checks on measured test errors.

The paper (arXiv 2012.09816) proves, for its multi-view data with single-view fraction μ and
V = 2 views per class, that a network trained from a random seed learns one view per class
(which one depends on the seed) and memorises the single-view training examples whose view it
missed. Its quantitative predictions, written here for general V (V = 2 gives the paper's):

    single model            ≈ μ(1 − 1/V)      Theorem 1: test error in [0.49μ, 0.51μ]
    ensemble of n members   ≈ μ(1 − 1/V)^n    Theorem 2: ≤ 0.01μ for Ω̃(1) members
    KD from the ensemble    ≪ μ               Theorem 3: ≤ 0.01μ
    self-distillation       ≈ ensemble of 2   Theorem 4: ≤ 0.26μ  (μ(1 − 1/V)² = μ/4)
    training the average    ≈ single model    (its experiments; no theorem)

and, from its experiments: in the NTK regime ensembling helps but distillation does not; on real
data an ensemble beats a single model, KD keeps most of the gain, self-KD helps less but helps.

`judge` turns each into a verdict from the measured mean ± 2 standard errors: "holds" when the
whole interval satisfies the claim, "fails" when none of it does, "inconclusive" otherwise (or
with a single value, whose SE is unknown). A distillation claim on a run where the ensemble is
not significantly better than a single model is labelled "no ensemble gain to transfer": not
evidence either way. Tolerances (chosen here; the paper's are asymptotic in the number of
classes): "≈" is within 0.1μ, "≪ μ" is at most 0.1μ, "most of the gain" is at least half.
Differences of two methods take SE = √(SE_a² + SE_b²), as if independent: members are shared
between single models and their ensemble (positively correlated), so this overstates the SE and
errs towards "inconclusive".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOLERANCE = 0.1  # in units of μ: "≈" and "≪ μ"
Z = 2.0  # interval half-width in standard errors
NO_GAIN = "no ensemble gain to transfer"


def predicted_errors(mu: float, views_per_class: int, n_members: int) -> dict[str, float]:
    """The mechanism's test errors (module docstring): one view in V learned per class."""
    miss = 1 - 1 / views_per_class
    return {
        "single": mu * miss,
        "ensemble": mu * miss**n_members,
        "kd": mu * miss**n_members,
        "self_kd": mu * miss**2,
        "average": mu * miss,
        "ensemble_of_2": mu * miss**2,
    }


def verdict(estimate: float, se: float, lo: float = -np.inf, hi: float = np.inf) -> str:
    """Whether estimate ± Z·se lies inside [lo, hi]: "holds" (all of it), "fails" (none of it),
    "inconclusive" (part of it, or se unknown)."""
    if not (np.isfinite(estimate) and np.isfinite(se)):
        return "inconclusive"
    a, b = estimate - Z * se, estimate + Z * se
    if lo <= a and b <= hi:
        return "holds"
    if b < lo or a > hi:
        return "fails"
    return "inconclusive"


def _combo(rows: dict, weights: dict) -> tuple[float, float]:
    """Σ w·mean and its SE √(Σ w²·SE²) over methods (independent-estimates approximation)."""
    if any(m not in rows for m in weights):
        return np.nan, np.nan
    est = sum(w * rows[m]["test_error_mean"] for m, w in weights.items())
    se = np.sqrt(sum(w**2 * rows[m]["test_error_se"] ** 2 for m, w in weights.items()))
    return float(est), float(se)


def _ensemble_gain(rows: dict) -> str:
    """Verdict on "the ensemble beats a single model" (single − ensemble > 0)."""
    return verdict(*_combo(rows, {"single": 1, "ensemble": -1}), lo=0)


def _multiview_feature(method: str, rows: dict, mu: float) -> tuple[str, str]:
    tol = TOLERANCE * mu
    r = rows[method]
    pred = predicted_errors(mu, int(r["views_per_class"]), int(r["n_members"]))
    if method == "single":
        return ("≈ μ(1 − 1/V) (Thm 1: 0.49–0.51μ)",
                verdict(r["test_error_mean"], r["test_error_se"], pred["single"] - tol, pred["single"] + tol))
    if method == "ensemble":
        return "≪ μ (Thm 2: ≤ 0.01μ)", verdict(r["test_error_mean"], r["test_error_se"], hi=tol)
    if method == "kd":
        if _ensemble_gain(rows) != "holds":
            return "≪ μ (Thm 3: ≤ 0.01μ)", NO_GAIN
        return "≪ μ (Thm 3: ≤ 0.01μ)", verdict(r["test_error_mean"], r["test_error_se"], hi=tol)
    if method == "self_kd":
        if _ensemble_gain(rows) != "holds":
            return "≈ ensemble of 2 (Thm 4: ≤ 0.26μ)", NO_GAIN
        return "≈ ensemble of 2 (Thm 4: ≤ 0.26μ)", verdict(*_combo(rows, {"self_kd": 1, "ensemble_of_2": -1}),
                                                            lo=-tol, hi=tol)
    if method == "average":
        return "≈ single (no gain)", verdict(*_combo(rows, {"average": 1, "single": -1}), lo=-tol, hi=tol)
    return "", ""


def _ntk(method: str, rows: dict) -> tuple[str, str]:
    if method == "ensemble":
        return "< single (ensembling helps)", _ensemble_gain(rows)
    if method == "kd":
        claim = "keeps < half the ensemble's gain (KD does not help)"
        if _ensemble_gain(rows) != "holds":
            return claim, NO_GAIN
        return claim, verdict(*_combo(rows, {"kd": 1, "single": -0.5, "ensemble": -0.5}), lo=0)
    return "", ""


def _real_feature(method: str, rows: dict) -> tuple[str, str]:
    if method == "ensemble":
        return "< single", _ensemble_gain(rows)
    gain = _ensemble_gain(rows) == "holds"
    if method == "kd":
        claim = "keeps ≥ half the ensemble's gain"
        return claim, verdict(*_combo(rows, {"single": 0.5, "ensemble": 0.5, "kd": -1}),
                              lo=0) if gain else NO_GAIN
    if method == "self_kd":
        claim = "< single (helps, less than KD)"
        return claim, verdict(*_combo(rows, {"single": 1, "self_kd": -1}), lo=0) if gain else NO_GAIN
    if method == "average":
        claim = "keeps < half the ensemble's gain (does not help)"
        return claim, verdict(*_combo(rows, {"average": 1, "single": -0.5, "ensemble": -0.5}),
                              lo=0) if gain else NO_GAIN
    return "", ""


def judge(table: pd.DataFrame) -> pd.DataFrame:
    """Add prediction, predicted_error and verdict columns to a summary table.

    `table`: one row per (data, regime, method) with test_error_mean, test_error_se, mu (NaN for
    real data), views_per_class and n_members (see `repatlas.ensembles.summary_table`). Rows
    with mu are judged against the multi-view predictions in the feature regime; every NTK row
    against the NTK claims; real-data feature rows against the real-data claims.
    """
    out = table.copy()
    out["prediction"], out["predicted_error"], out["verdict"] = "", np.nan, ""
    for _, group in out.groupby(["data", "regime"], sort=False):
        rows = {r["method"]: r for _, r in group.iterrows()}
        for idx, r in group.iterrows():
            mu, regime, method = r["mu"], r["regime"], r["method"]
            if regime == "ntk":
                claim, v = _ntk(method, rows)
            elif np.isfinite(mu):
                claim, v = _multiview_feature(method, rows, mu)
            else:
                claim, v = _real_feature(method, rows)
            if np.isfinite(mu) and regime == "feature":
                out.loc[idx, "predicted_error"] = predicted_errors(mu, int(r["views_per_class"]),
                                                                   int(r["n_members"])).get(method, np.nan)
            out.loc[idx, ["prediction", "verdict"]] = [claim, v]
    return out
