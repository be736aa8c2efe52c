import numpy as np
import pandas as pd
import pytest

from repatlas.ensemble_claims import NO_GAIN, judge, predicted_errors, verdict


def test_predicted_errors_are_the_papers_for_two_views():
    p = predicted_errors(0.2, views_per_class=2, n_members=5)
    assert p["single"] == pytest.approx(0.1)  # μ/2 (Theorem 1)
    assert p["self_kd"] == p["ensemble_of_2"] == pytest.approx(0.05)  # μ/4 ≤ 0.26μ (Theorem 4)
    assert p["ensemble"] == p["kd"] == pytest.approx(0.2 / 32)
    assert predicted_errors(0.3, views_per_class=3, n_members=2)["ensemble"] == pytest.approx(0.3 * 4 / 9)


@pytest.mark.parametrize("estimate,se,expected", [
    (0.05, 0.001, "holds"),  # 0.048..0.052 inside [0.04, 0.06]
    (0.05, 0.02, "inconclusive"),  # 0.01..0.09 straddles both ends
    (0.065, 0.005, "inconclusive"),  # 0.055..0.075 straddles the upper end
    (0.2, 0.01, "fails"),  # 0.18..0.22 above the band
    (0.01, 0.01, "fails"),  # −0.01..0.03 below it
    (0.05, np.nan, "inconclusive"),  # one value: SE unknown
])
def test_verdict_compares_the_two_se_interval_with_the_band(estimate, se, expected):
    assert verdict(estimate, se, 0.04, 0.06) == expected


def _rows(data, regime, mu, errors, se=0.002, n_members=5):
    return [{"data": data, "regime": regime, "mu": mu, "views_per_class": 2, "n_members": n_members,
             "method": m, "test_error_mean": e, "test_error_se": se} for m, e in errors.items()]


def test_judge_multiview_feature_rows_against_the_predictions():
    mu = 0.2
    table = pd.DataFrame(_rows("mv", "feature", mu, {
        "single": 0.1,  # μ/2: holds
        "ensemble": 0.004,  # ≤ 0.1μ = 0.02: holds
        "kd": 0.09,  # far above 0.1μ: fails
        "self_kd": 0.052,  # within 0.1μ of the ensemble of two: holds
        "average": 0.15,  # 0.05 above single, beyond 0.1μ = 0.02: fails
        "ensemble_of_2": 0.05,
    }))
    out = judge(table).set_index("method")
    assert out.loc["single", "verdict"] == "holds"
    assert out.loc["ensemble", "verdict"] == "holds"
    assert out.loc["kd", "verdict"] == "fails"
    assert out.loc["self_kd", "verdict"] == "holds"
    assert out.loc["average", "verdict"] == "fails"
    assert out.loc["ensemble_of_2", "verdict"] == ""
    assert out.loc["single", "predicted_error"] == pytest.approx(0.1)
    assert out.loc["ensemble", "predicted_error"] == pytest.approx(0.2 / 32)
    assert "Thm 1" in out.loc["single", "prediction"]


def test_judge_without_an_ensemble_gain_labels_distillation_not_evidence():
    # the digits result: the ensemble is no better than a single model
    table = pd.DataFrame(_rows("digits", "feature", np.nan, {
        "single": 0.05, "ensemble": 0.05, "kd": 0.04, "self_kd": 0.06, "average": 0.05, "ensemble_of_2": 0.05,
    }))
    out = judge(table).set_index("method")
    assert out.loc["ensemble", "verdict"] == "inconclusive"  # (single − ensemble) ± 2SE straddles 0
    assert out.loc["kd", "verdict"] == NO_GAIN and out.loc["self_kd", "verdict"] == NO_GAIN
    assert out.loc["average", "verdict"] == NO_GAIN
    assert np.isnan(out.loc["single", "predicted_error"])


def test_judge_real_data_with_a_gain_and_the_ntk_claims():
    table = pd.DataFrame(
        _rows("digits", "feature", np.nan, {"single": 0.10, "ensemble": 0.05, "kd": 0.06, "self_kd": 0.08,
                                            "average": 0.095, "ensemble_of_2": 0.07})
        + _rows("digits", "ntk", np.nan, {"single": 0.10, "ensemble": 0.05, "kd": 0.098, "self_kd": 0.1,
                                          "average": 0.05, "ensemble_of_2": 0.07})
    )
    out = judge(table).set_index(["regime", "method"])
    assert out.loc[("feature", "ensemble"), "verdict"] == "holds"
    assert out.loc[("feature", "kd"), "verdict"] == "holds"  # keeps 0.04 of the 0.05 gain
    assert out.loc[("feature", "self_kd"), "verdict"] == "holds"
    assert out.loc[("feature", "average"), "verdict"] == "holds"  # keeps only 0.005
    assert out.loc[("ntk", "ensemble"), "verdict"] == "holds"
    assert out.loc[("ntk", "kd"), "verdict"] == "holds"  # KD keeps 0.002 of 0.05: does not help
    assert out.loc[("ntk", "self_kd"), "verdict"] == ""  # no claim
