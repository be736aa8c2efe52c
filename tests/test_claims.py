"""The claims ledger: every registered claim reaches all three verdicts on synthetic result files.

Inputs are built the way the studies build them: mitosis rows go through
`repatlas.mitosis.mitosis_claims`, ensembles rows through `repatlas.ensemble_claims.judge`, the
cookbook gap through `repatlas.infinite.cookbook_gap_table`; so a ledger verdict is checked
against the producer the pipeline runs, not against a hand-set column.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from repatlas import claims
from repatlas.ensemble_claims import judge
from repatlas.infinite import cookbook_gap_table
from repatlas.mitosis import mitosis_claims
from repatlas.steps import claims as claims_steps

HOLDS, FAILS, INCONCLUSIVE = claims.VERDICTS


# ----------------------------------------------------------------------------- wide vs deep
def blocks_table(fractions, *, accuracy=0.9, inside=0.3, outside=0.8, without_pc1=0.1):
    """blocks.csv rows at n 100 (plus a decoy at n 50): fractions[(depth, width)] = per-seed
    block_layers / n_layers (20 layers); inside/outside are per-seed seed CKA, without_pc1 the
    largest block's CKA without PC1 (its CKA is 0.9) (scalars or per-seed lists)."""
    rows = []
    for n in (50, 100):
        for (depth, width), per_seed in fractions.items():
            for s, f in enumerate(per_seed):
                pick = lambda v: v[s] if isinstance(v, list) else v  # noqa: E731
                rows.append({"model": f"digits-n{n}-resnet-d{depth}-w{width}-s{s}", "dataset": "digits",
                             "n": n, "arch": "resnet", "depth": depth, "width": width, "seed": s,
                             "test_accuracy": accuracy,
                             "n_layers": 20, "block_layers": int(round(20 * (f if n == 100 else 1 - f))),
                             "seed_cka_inside": pick(inside), "seed_cka_outside": pick(outside),
                             "largest_cka": 0.9, "largest_cka_without_pc1": pick(without_pc1)})
    return pd.DataFrame(rows)


def width_case(narrow, wide):
    """Deepest depth 26 carries the comparison; depth 8 holds the opposite trend as a decoy."""
    return {(26, 1): narrow, (26, 4): wide, (8, 1): wide, (8, 4): narrow}


def depth_case(shallow, deep):
    return {(8, 4): shallow, (26, 4): deep, (8, 1): deep, (26, 1): shallow}


CASES = {
    ("wide_deep", "blocks_with_width"): {
        HOLDS: {"blocks": blocks_table(width_case([0.0, 0.05, 0.0], [0.5, 0.6, 0.55]))},
        FAILS: {"blocks": blocks_table(width_case([0.5, 0.6, 0.55], [0.0, 0.05, 0.0]))},
        INCONCLUSIVE: {"blocks": blocks_table(width_case([0.0, 0.05, 0.0], [0.5, 0.6, 0.55]), accuracy=0.2)},
    },
    ("wide_deep", "blocks_with_depth"): {
        HOLDS: {"blocks": blocks_table(depth_case([0.1, 0.1, 0.15], [0.6, 0.65, 0.6]))},
        FAILS: {"blocks": blocks_table(depth_case([0.3, 0.3, 0.3], [0.3, 0.3, 0.3]))},
        INCONCLUSIVE: {"blocks": blocks_table(depth_case([0.1, 0.6, 0.1], [0.6, 0.1, 0.5]))},
    },
    ("wide_deep", "blocks_unique_to_seed"): {
        HOLDS: {"blocks": blocks_table(width_case([0.3] * 3, [0.5] * 3), inside=[0.2, 0.3, 0.25])},
        FAILS: {"blocks": blocks_table(width_case([0.3] * 3, [0.5] * 3), inside=[0.9, 0.95, 0.9])},
        INCONCLUSIVE: {"blocks": blocks_table(width_case([0.3] * 3, [0.5] * 3)).drop(
            columns=["seed_cka_inside", "seed_cka_outside"])},
    },
    ("wide_deep", "blocks_are_first_pc"): {
        HOLDS: {"blocks": blocks_table(width_case([0.3] * 3, [0.5] * 3), without_pc1=[0.1, 0.2, 0.15])},
        FAILS: {"blocks": blocks_table(width_case([0.3] * 3, [0.5] * 3), without_pc1=[0.8, 0.85, 0.8])},
        # ratios 0.2 / 0.8 / 0.5 around the 0.5 line
        INCONCLUSIVE: {"blocks": blocks_table(width_case([0.3] * 3, [0.5] * 3),
                                              without_pc1=[0.18, 0.72, 0.45])},
    },
}


def errors_csv(p_value, warning=""):
    return pd.DataFrame([{"arch_a": "digits-n100-resnet-d26-w1", "arch_b": "digits-n100-resnet-d8-w4",
                          "seeds_a": 5, "seeds_b": 5, "mean_accuracy_a": 0.95, "mean_accuracy_b": 0.952,
                          "accuracy_gap": -0.002, "matched": True, "p_value": p_value, "min_p": 0.008,
                          "warning": warning}])


CASES[("wide_deep", "errors_differ")] = {
    HOLDS: {"errors": errors_csv(0.01)},
    FAILS: {"errors": errors_csv(0.4)},
    INCONCLUSIVE: {"errors": errors_csv(0.01, "accuracies differ by 3.0 points (> 1): not matched")},
}


# ----------------------------------------------------------------------------- Neural Redshift
def scale_sweep(values, *, convention="paper", reference=0.54):
    """A complexity_sweep-shaped Dataset: values[activation] = array (scale, depth, seed)."""
    acts = list(values)
    data = np.stack([values[a] for a in acts])[:, :, :, None, None, :]
    ds = xr.Dataset({"fourier": (("activation", "scale", "depth", "width", "variant", "seed"), data)},
                    coords={"activation": acts, "scale": [1.0, 10.0, 100.0, 300.0], "depth": [1, 4],
                            "width": [64], "variant": ["plain"], "seed": [0, 1, 2]},
                    attrs={"settings_fourier_convention": convention, "R": 64})
    ds["fourier"].attrs["unbiased_reference"] = reference
    return ds


def cells(base, spread=0.0, seeds=3):
    """(4 scales, 2 depths, seeds) array around base; seed s adds (s − 1)·spread."""
    return base + spread * (np.arange(seeds) - 1)[None, None, :] + np.zeros((4, 2, seeds))


def with_cell(array, scale_index, depth_index, values):
    out = array.copy()
    out[scale_index, depth_index] = values
    return out


CASES |= {
    ("redshift", "relu_low_frequency"): {
        # A = 300 is outside the claim's range: its high value is not read
        HOLDS: {"scale": scale_sweep({"relu": with_cell(cells(0.15, 0.01), 3, 1, 0.5), "sin": cells(0.5)})},
        FAILS: {"scale": scale_sweep({"relu": with_cell(cells(0.15, 0.01), 2, 1, 0.4), "sin": cells(0.5)})},
        INCONCLUSIVE: {"scale": scale_sweep({"relu": cells(0.15, 0.01)}, convention="cycles")},
    },
    ("redshift", "sin_white_noise"): {
        HOLDS: {"scale": scale_sweep({"sin": with_cell(cells(0.2), 3, 1, [0.53, 0.54, 0.535])})},
        FAILS: {"scale": scale_sweep({"sin": with_cell(cells(0.2), 3, 1, [0.3, 0.31, 0.3])})},
        INCONCLUSIVE: {"scale": scale_sweep({"sin": with_cell(cells(0.2), 3, 1, [0.3, 0.54, 0.6])})},
    },
}


def paired_sweep(coord, values, per_seed):
    """A tanh sweep over `coord` (variant or width) at A in {1, 10}: complexity 0.3 everywhere but at
    A = 10, where values[v] + per_seed[v][s] (per_seed default 0) is seed s's value for `coord` = v."""
    vals = list(values)
    other = {"variant": {"width": [64]}, "width": {"variant": ["plain"]}}[coord]
    coords = {"activation": ["tanh"], "scale": [1.0, 10.0], "depth": [2], coord: vals, **other,
              "seed": [0, 1, 2]}
    dims = ("activation", "scale", "depth", "width", "variant", "seed")
    data = np.full([len(coords[d]) for d in dims], 0.3)
    axis = dims.index(coord)
    for i, v in enumerate(vals):
        index = [slice(None)] * len(dims)
        index[1], index[axis] = 1, i
        data[tuple(index)] = values[v] + np.asarray(per_seed.get(v, 0.0))
    ds = xr.Dataset({"fourier": (dims, data)}, coords=coords,
                    attrs={"settings_fourier_convention": "paper", "R": 64})
    return ds


def variant_case(delta, noise=(0.0, 0.0, 0.0)):
    """residual, layernorm and gating all at plain + delta (seed noise added)."""
    values = {"plain": 0.4, "residual": 0.4 + delta, "layernorm": 0.4 + delta, "gating": 0.4 + delta}
    noise = {v: np.asarray(noise) + 0.01 * np.array([-1, 0, 1]) for v in values if v != "plain"}
    return {"variant_sweep": paired_sweep("variant", values, noise)}


CASES |= {
    ("redshift", "residual_lowers"): {HOLDS: variant_case(-0.1), FAILS: variant_case(0.1),
                                      INCONCLUSIVE: variant_case(0.0, noise=(0.1, -0.1, 0.05))},
    ("redshift", "layernorm_lowers"): {HOLDS: variant_case(-0.1), FAILS: variant_case(0.1),
                                       INCONCLUSIVE: variant_case(0.0, noise=(0.1, -0.1, 0.05))},
    ("redshift", "gating_raises"): {HOLDS: variant_case(0.1), FAILS: variant_case(-0.1),
                                    INCONCLUSIVE: variant_case(0.0, noise=(0.1, -0.1, 0.05))},
    ("redshift", "width_no_effect"): {
        HOLDS: {"width_sweep": paired_sweep("width", {8: 0.3, 32: 0.3}, {32: [0.01, -0.01, 0.0]})},
        FAILS: {"width_sweep": paired_sweep("width", {8: 0.3, 32: 0.5}, {32: [0.01, -0.01, 0.0]})},
        INCONCLUSIVE: {"width_sweep": paired_sweep("width", {8: 0.3, 32: 0.3}, {32: [0.1, -0.1, 0.05]})},
    },
}


# ----------------------------------------------------------------------------- infinite width
def gap_table(widths, gap2, gap2_se):
    """cookbook_gap_table over per-width results carrying the given debiased squared gaps."""
    per_width = [xr.Dataset({"gap": np.sqrt(max(g, 0)), "gap_se": s, "gap2": g, "gap2_se": s, "gap_raw": g,
                             "noise_rms": 0.0},
                            attrs={"width": w, "pairs": 4, "architecture": "mlp", "activation": "erf"})
                 for w, g, s in zip(widths, gap2, gap2_se)]
    return cookbook_gap_table(per_width)


def ntk_errors(exponent, seeds=3, noise=0.02):
    """relative_error = 2·width^-exponent, seed s scaled by (1 + noise·(s − 1))."""
    widths = np.array([16, 64, 256, 1024])
    err = (2.0 * widths[:, None] ** -exponent
           * np.exp(noise * (np.arange(seeds) - 1) * np.log(widths)[:, None]))
    return xr.Dataset({"relative_error": (("width", "seed"), err)},
                      coords={"width": widths, "seed": np.arange(seeds)})


W = np.array([8.0, 16, 32, 64])
CASES |= {
    ("infinite", "gap_one_over_width"): {
        HOLDS: {"cookbook_gap": gap_table(W, (3 / W) ** 2, 0.05 * (3 / W) ** 2)},  # gap = 3/width exactly
        FAILS: {"cookbook_gap": gap_table(W, 0.04 * (W / 8) ** -0.2, np.full(4, 0.001))},  # gap ~ width^-0.1
        INCONCLUSIVE: {"cookbook_gap": gap_table(W, (3 / W) ** 2, np.full(4, 0.5))},  # noise swamps the gap
    },
    ("infinite", "ntk_inverse_sqrt_width"): {
        HOLDS: {"ntk_convergence": ntk_errors(0.5)},
        FAILS: {"ntk_convergence": ntk_errors(1.0)},
        INCONCLUSIVE: {"ntk_convergence": ntk_errors(0.5, seeds=1)},
    },
}


def regression(narrow, wide, ntk=0.8):
    """regression_experiment-shaped Dataset: centred accuracies per seed at widths 16 and 256 (raw
    networks at chance as a decoy)."""
    acc = np.stack([np.full((2, len(narrow)), 0.1), np.array([narrow, wide])])
    return xr.Dataset({"finite_accuracy": (("centred", "width", "seed"), acc), "ntk_t": ntk},
                      coords={"centred": [0, 1], "width": [16, 256], "seed": np.arange(len(narrow))})


def conv_regression(diff, se):
    """conv_regression-shaped Dataset over n_train 10, 20: conv − FC = diff at 20 (−diff at 10)."""
    d = np.array([[-diff, diff]] * 2)
    acc = np.stack([np.full((2, 2), 0.5), 0.5 + d])
    return xr.Dataset({"accuracy": (("architecture", "kernel", "n_train"), acc),
                       "conv_minus_fc": (("kernel", "n_train"), d),
                       "conv_minus_fc_se": (("kernel", "n_train"), np.full((2, 2), se))},
                      coords={"architecture": ["fc", "conv"], "kernel": ["nngp", "ntk"], "n_train": [10, 20],
                              "example": np.arange(100)})


CASES |= {
    ("infinite", "finite_approaches_ntk"): {
        HOLDS: {"regression": regression([0.6, 0.62, 0.65], [0.79, 0.8, 0.81])},
        FAILS: {"regression": regression([0.79, 0.8, 0.81], [0.6, 0.62, 0.65])},
        INCONCLUSIVE: {"regression": regression([0.6, 0.8, 0.7], [0.7, 0.65, 0.78])},
    },
    ("infinite", "conv_beats_fc"): {
        HOLDS: {"conv_regression": conv_regression(0.1, 0.02)},
        FAILS: {"conv_regression": conv_regression(-0.1, 0.02)},
        INCONCLUSIVE: {"conv_regression": conv_regression(0.02, 0.03)},
    },
}


# ----------------------------------------------------------------------------- mitosis
def mitosis_summary(widths=(8, 16, 32, 64), chunk=lambda w: 4.0, residual=0.05, gap=0.0, snapshot_clones=1.0):
    """Converged rows (2 seeds) plus one epoch-1 snapshot per run with training error 0.1, judged
    by repatlas.mitosis.mitosis_claims as the pipeline does."""
    rows = []
    for w in widths:
        for s in (0, 1):
            c = chunk(w)
            base = {"arch": "mlp", "width": w, "model_seed": s, "test_accuracy": 0.95}
            rows.append({**base, "regime": "epoch1", "epoch": 1, "train_error": 0.1, "critical_chunk": w,
                         "clones": snapshot_clones, "residual_corr_at_2critical": 0.5,
                         "accuracy_gap_at_critical": 0.1})
            rows.append({**base, "regime": "converged", "epoch": 10, "train_error": 0.0, "critical_chunk": c,
                         "clones": w / c, "residual_corr_at_2critical": residual,
                         "accuracy_gap_at_critical": gap})
    return mitosis_claims(pd.DataFrame(rows))


CASES |= {
    ("mitosis", "constant_critical_chunk"): {
        HOLDS: {"summary": mitosis_summary()},
        FAILS: {"summary": mitosis_summary(chunk=lambda w: w / 2)},
        INCONCLUSIVE: {"summary": mitosis_summary(widths=(8, 16))},
    },
    ("mitosis", "clones_proportional_to_width"): {
        HOLDS: {"summary": mitosis_summary()},
        FAILS: {"summary": mitosis_summary(chunk=lambda w: w / 2)},
        INCONCLUSIVE: {"summary": mitosis_summary(widths=(8, 16))},
    },
    ("mitosis", "clones_differ_by_noise"): {
        HOLDS: {"summary": mitosis_summary()},
        FAILS: {"summary": mitosis_summary(residual=0.4)},
        INCONCLUSIVE: {"summary": mitosis_summary(chunk=lambda w: w / 2)},  # no onset
    },
    ("mitosis", "chunk_matches_full_layer"): {
        HOLDS: {"summary": mitosis_summary()},
        FAILS: {"summary": mitosis_summary(gap=0.1)},
        INCONCLUSIVE: {"summary": mitosis_summary(chunk=lambda w: w / 2)},
    },
    ("mitosis", "needs_zero_error"): {
        HOLDS: {"summary": mitosis_summary()},  # snapshots 1 clone, converged ≥ 2
        FAILS: {"summary": mitosis_summary(snapshot_clones=100.0)},
        INCONCLUSIVE: {"summary": mitosis_summary(widths=(8, 16))},
    },
}


# ----------------------------------------------------------------------------- ensembles
def ensembles_summary(errors, *, data="digits", regime="feature", mu=np.nan, se=0.002):
    """One (data, regime) group of the summary table, judged by repatlas.ensemble_claims.judge."""
    rows = [{"data": data, "regime": regime, "mu": mu, "views_per_class": 2, "n_members": 5, "method": m,
             "count": 6, "test_error_mean": e, "test_error_se": se} for m, e in errors.items()]
    return judge(pd.DataFrame(rows))


MV = {"data": "multiview-mu0.2", "mu": 0.2}
NTK_MV = MV | {"regime": "ntk"}
CASES |= {
    ("ensembles", "ntk_ensemble_helps"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2}, regime="ntk")},
        FAILS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.4}, regime="ntk")},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.29}, regime="ntk",
                                                    se=0.02)},
    },
    ("ensembles", "ntk_kd_does_not_help"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2, "kd": 0.3}, regime="ntk")},
        FAILS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2, "kd": 0.2}, regime="ntk")},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.3, "kd": 0.3},
                                                    regime="ntk")},
    },
    ("ensembles", "ensemble_helps"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2})},
        FAILS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.4})},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.29}, se=0.02)},
    },
    ("ensembles", "kd_keeps_gain"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2, "kd": 0.21})},
        FAILS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2, "kd": 0.3})},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.3, "kd": 0.2})},  # no gain
    },
    ("ensembles", "self_kd_helps"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2, "self_kd": 0.25})},
        FAILS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2, "self_kd": 0.32})},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.3, "self_kd": 0.25})},
    },
    ("ensembles", "average_does_not_help"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2, "average": 0.3})},
        FAILS: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.2, "average": 0.2})},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.3, "ensemble": 0.3, "average": 0.3})},
    },
    ("ensembles", "multiview_ensemble"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.005}, **MV)},
        FAILS: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.1}, **MV)},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.01}, **MV, se=0.05)},
    },
    ("ensembles", "multiview_self_kd"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.005, "ensemble_of_2": 0.05,
                                              "self_kd": 0.052}, **MV)},
        FAILS: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.005, "ensemble_of_2": 0.05,
                                              "self_kd": 0.1}, **MV)},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.1, "ensemble_of_2": 0.1,
                                                     "self_kd": 0.05}, **MV)},
    },
    ("ensembles", "multiview_single"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.005}, **MV)},
        FAILS: {"summary": ensembles_summary({"single": 0.2, "ensemble": 0.005}, **MV)},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.005}, **MV, se=0.05)},
    },
    ("ensembles", "multiview_kd"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.005, "kd": 0.004}, **MV)},
        FAILS: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.005, "kd": 0.09}, **MV)},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.1, "ensemble": 0.1, "kd": 0.004}, **MV)},
    },
    ("ensembles", "multiview_ntk_ensemble_helps"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.4, "ensemble": 0.1}, **NTK_MV)},
        FAILS: {"summary": ensembles_summary({"single": 0.4, "ensemble": 0.5}, **NTK_MV)},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.4, "ensemble": 0.39}, **NTK_MV, se=0.02)},
    },
    ("ensembles", "multiview_ntk_kd_does_not_help"): {
        HOLDS: {"summary": ensembles_summary({"single": 0.4, "ensemble": 0.1, "kd": 0.5}, **NTK_MV)},
        FAILS: {"summary": ensembles_summary({"single": 0.4, "ensemble": 0.1, "kd": 0.1}, **NTK_MV)},
        INCONCLUSIVE: {"summary": ensembles_summary({"single": 0.4, "ensemble": 0.4, "kd": 0.4}, **NTK_MV)},
    },
}


# ----------------------------------------------------------------------------- tests
def test_every_registered_claim_has_a_case_for_each_verdict():
    registered = {(study, c.id) for study, registry in claims.REGISTRY.items() for c in registry}
    assert registered == set(CASES)
    assert all(set(cases) == set(claims.VERDICTS) for cases in CASES.values())
    assert all(len(r) >= 2 for r in claims.REGISTRY.values())


def _rows(study, claim, results):
    table = claims.ledger(study, results, config_hash="abc", artifacts={k: f"{k}.file" for k in results})
    return table[table["claim"] == claim]


def _row(study, claim, results):
    rows = _rows(study, claim, results)
    assert len(rows) == 1, rows
    return rows.iloc[0]


@pytest.mark.parametrize("key,verdict", [(k, v) for k in CASES for v in claims.VERDICTS],
                         ids=lambda x: x if isinstance(x, str) else "/".join(x))
def test_claim_reaches_verdict(key, verdict):
    study, claim = key
    rows = _rows(study, claim, CASES[key][verdict])
    assert len(rows) >= 1
    for _, row in rows.iterrows():  # one row per scope (conv_beats_fc: NNGP and NTK kernels)
        assert row["verdict"] == verdict, row.to_dict()
        assert bool(row["reason"]) == (verdict == INCONCLUSIVE), row.to_dict()  # inconclusive always says why
        assert row["config_hash"] == "abc" and row["artifacts"].endswith(".file")


def test_missing_result_file_is_inconclusive_and_says_so():
    for study, registry in claims.REGISTRY.items():
        table = claims.ledger(study, {})
        assert (table["verdict"] == INCONCLUSIVE).all() and table["reason"].str.len().gt(0).all(), study
        assert list(table["claim"]) == [c.id for c in registry]


def test_blocks_with_width_value_is_the_paired_seed_mean():
    fr = width_case([0.0, 0.05, 0.0], [0.5, 0.6, 0.55])
    row = _row("wide_deep", "blocks_with_width", {"blocks": blocks_table(fr)})
    diffs = [round(20 * b) / 20 - round(20 * a) / 20 for a, b in zip(fr[(26, 1)], fr[(26, 4)])]
    assert row["value"] == pytest.approx(np.mean(diffs))
    assert row["se"] == pytest.approx(np.std(diffs, ddof=1) / np.sqrt(3))
    assert row["seeds"] == 3 and "accuracy" not in row["reason"]


def test_accuracy_gate_names_the_lowest_accuracy():
    row = _row("wide_deep", "blocks_with_width", CASES[("wide_deep", "blocks_with_width")][INCONCLUSIVE])
    assert "required accuracy" in row["reason"] and "0.200" in row["reason"]


def test_gap_claim_reads_the_studys_one_over_width_verdict():
    ds = CASES[("infinite", "gap_one_over_width")][HOLDS]["cookbook_gap"]
    assert ds.attrs["one_over_width"] == 1
    row = _row("infinite", "gap_one_over_width", {"cookbook_gap": ds})
    assert row["value"] == pytest.approx(1.0, abs=1e-6)  # gap = 3/width exactly


def test_ntk_slope_matches_the_closed_form():
    row = _row("infinite", "ntk_inverse_sqrt_width", {"ntk_convergence": ntk_errors(0.5, noise=0.0, seeds=2)})
    assert row["value"] == pytest.approx(0.5) and row["se"] == pytest.approx(0.0, abs=1e-12)


def test_relu_statistic_ignores_scales_above_100_and_other_activations():
    ds = CASES[("redshift", "relu_low_frequency")][HOLDS]["scale"]
    row = _row("redshift", "relu_low_frequency", {"scale": ds})
    # seeds 0.14, 0.15, 0.16 everywhere below A = 300 (0.5 there; sin 0.5 everywhere): seed mean 0.15
    assert row["value"] == pytest.approx(0.15) and row["se"] == pytest.approx(0.01 / np.sqrt(3))
    assert row["seeds"] == 3 and row["scope"] == "relu"


def test_ledger_files_and_what_reproduces_table(tmp_path):
    mitosis = tmp_path / "summary.csv"
    CASES[("mitosis", "needs_zero_error")][HOLDS]["summary"].to_csv(mitosis, index=False)
    gap = tmp_path / "cookbook_gap.nc"
    CASES[("infinite", "gap_one_over_width")][FAILS]["cookbook_gap"].to_netcdf(gap)
    out = tmp_path / "claims"
    claims_steps.ledger_to_file("mitosis", {"summary": mitosis}, out / "mitosis.csv", config_hash="h1")
    claims_steps.ledger_to_file("infinite", {"cookbook_gap": gap}, out / "infinite.csv", config_hash="h1")
    assert sorted(p.name for p in out.iterdir()) == ["infinite.csv", "mitosis.csv"]  # no temporaries left
    back = pd.read_csv(out / "mitosis.csv")
    assert list(back.columns) == list(claims.COLUMNS)
    assert (back["verdict"] == HOLDS).all() and (back["artifacts"] == str(mitosis)).all()
    inf = pd.read_csv(out / "infinite.csv").set_index("claim")
    assert inf.loc["gap_one_over_width", "verdict"] == FAILS
    # their files were not given
    assert (inf.drop(index="gap_one_over_width")["verdict"] == INCONCLUSIVE).all()

    md = tmp_path / "what_reproduces.md"
    claims_steps.what_reproduces_to_file([out / "mitosis.csv", out / "infinite.csv"], md,
                                         config="configs/x.yaml", hardware="x86_64, 2 CPU cores, device: cpu")
    text = md.read_text()
    assert "`configs/x.yaml` on x86_64, 2 CPU cores" in text and "config hash h1" in text
    body = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| study")]
    assert len(body) == len(back) + len(inf)
    assert sum("| does not hold |" in line for line in body) == 1
    assert sum("| inconclusive (" in line for line in body) == len(inf) - 1


def test_table_rows_keep_their_columns_when_text_holds_a_pipe():
    table = claims.ledger("infinite", CASES[("infinite", "finite_approaches_ntk")][HOLDS])
    assert table["statistic"].str.contains("|", regex=False).any()  # |accuracy − NTK(t) accuracy|
    text = claims.what_reproduces(table, config="config.yaml", hardware="test")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(table)
    unescaped = [len(line.replace("\\|", "")) - len(line.replace("\\|", "").replace("|", ""))
                 for line in rows]
    assert set(unescaped) == {9}  # 8 columns


def test_preconditions_turn_a_verdict_inconclusive_and_say_which():
    """The ci-tiny run's untrained models and coarse grids: never 'does not hold' (nor 'holds')."""
    coarse = scale_sweep({"relu": cells(0.4, 0.01), "sin": cells(0.5)})
    coarse.attrs["R"] = 16
    for claim in ("relu_low_frequency", "sin_white_noise"):
        row = _row("redshift", claim, {"scale": coarse})
        assert row["verdict"] == INCONCLUSIVE and "R = 16 < 64" in row["reason"]

    untrained = mitosis_summary(chunk=lambda w: w / 2)  # 'does not hold' once trained
    untrained.loc[untrained["regime"] == "converged", "train_error"] = 0.1
    row = _row("mitosis", "constant_critical_chunk", {"summary": untrained})
    assert row["verdict"] == INCONCLUSIVE and "zero training error" in row["reason"]

    # digits at 85 % error (untrained): the study's own verdict 'fails' is not carried over
    digits = ensembles_summary({"single": 0.85, "ensemble": 0.95})
    assert (digits.loc[digits["method"] == "ensemble", "verdict"] == "fails").all()
    row = _row("ensembles", "ensemble_helps", {"summary": digits})
    assert row["verdict"] == INCONCLUSIVE and "accuracy 0.150 < 0.5" in row["reason"]
    # multi-view: a single model worse than μ errs on multi-view examples too
    mv = ensembles_summary({"single": 0.87, "ensemble": 0.875}, **MV)
    row = _row("ensembles", "multiview_single", {"summary": mv})
    assert row["verdict"] == INCONCLUSIVE and "> μ = 0.2" in row["reason"]
    # NTK regime on multi-view data: error above μ is the regime's prediction; only the accuracy floor applies
    ntk = ensembles_summary({"single": 0.4, "ensemble": 0.1}, **NTK_MV)
    assert _row("ensembles", "multiview_ntk_ensemble_helps", {"summary": ntk})["verdict"] == HOLDS
    ntk = ensembles_summary({"single": 0.6, "ensemble": 0.1}, **NTK_MV)
    row = _row("ensembles", "multiview_ntk_ensemble_helps", {"summary": ntk})
    assert row["verdict"] == INCONCLUSIVE and "accuracy 0.400 < 0.5" in row["reason"]

    few = conv_regression(-0.1, 0.02).isel(example=slice(0, 20))
    rows = _rows("infinite", "conv_beats_fc", {"conv_regression": few})
    assert (rows["verdict"] == INCONCLUSIVE).all() and rows["reason"].str.contains("20 < 100").all()
