"""Infinite-width figures: finite ensembles vs the NTK (cookbook), NTK convergence with width,
kernel regression vs finite networks, the debiased cookbook gap and conv vs FC kernels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from repatlas.plots.common import axes_title, figure_title, log_x_ticks


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
        figure_title(fig, title)
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
    axes_title(ax, title)
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
    axes_title(ax, title)
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
    if (~ok).any():  # debiased gap² ≤ 0: only an upper bound
        ax.plot(w[~ok], hi[~ok], marker="v", color="C0", ls="none", label="debiased gap² ≤ 0: +1 SE bound")
    ax.plot(w, ds["noise_rms"].values, "x", color="grey", label="rms SE of the ensemble mean")
    if "exponent" in ds.attrs:
        a, p, se = ds.attrs["amplitude"], ds.attrs["exponent"], ds.attrs["exponent_se"]
        grid = np.geomspace(w.min(), w.max(), 50)
        ax.plot(grid, np.sqrt(a) * grid**-p, color="C0", lw=1, label=f"fit: width^-({p:.2f} ± {se:.2f})")
        ax.plot(grid, np.sqrt(a) * w.min() ** -p * (w.min() / grid), ls=":", color="k", lw=1,
                label="∝ 1/width")
    ax.set(xscale="log", yscale="log", xlabel="hidden width", ylabel="rms(ensemble mean − NTK mean)")
    log_x_ticks(ax, w)
    ax.legend(fontsize=7)
    axes_title(ax, title)
    fig.tight_layout()
    return fig


def conv_regression_figure(ds, *, title: str | None = None):
    """Test accuracy of NNGP/NTK kernel regression against training-set size: FC vs conv-GAP kernels
    (left), and the paired difference conv − FC ± 2 standard errors (right)."""
    fig, (ax_a, ax_d) = plt.subplots(1, 2, figsize=(10, 3.6))
    n = ds["n_train"].values
    for arch, color in (("fc", "C0"), ("conv", "C3")):
        for kind, style in (("nngp", "--"), ("ntk", "-")):
            ax_a.plot(n, ds["accuracy"].sel(architecture=arch, kernel=kind), ls=style, marker="o",
                      color=color, label=f"{arch}, {kind.upper()}")
    ax_a.set(xscale="log", xlabel="training images", ylabel="test accuracy")
    ax_a.legend(fontsize=7, handlelength=4)  # long enough to show NNGP dashed, NTK solid
    for kind, style, shift in (("nngp", "--", 0.97), ("ntk", "-", 1.03)):
        d, se = ds["conv_minus_fc"].sel(kernel=kind), ds["conv_minus_fc_se"].sel(kernel=kind)
        ax_d.errorbar(n * shift, d, yerr=2 * se, ls=style, marker="o", capsize=3, color="k",
                      label=kind.upper())
    ax_d.axhline(0, color="grey", lw=0.8)
    ax_d.set(xscale="log", xlabel="training images", ylabel="accuracy(conv) − accuracy(FC), ± 2 SE")
    for ax in (ax_a, ax_d):
        log_x_ticks(ax, n)
    ax_d.legend(fontsize=7, handlelength=4)
    if title:
        figure_title(fig, title, fontsize=9)
    fig.tight_layout()
    return fig


