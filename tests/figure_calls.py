"""Every figure of a finished ci-tiny run, redrawn by the figure steps from its result files.

`figure_calls(workdir)` maps each figure name (results/figures/<name>.png) to a function of the
output paths that calls the figure's step with the files and settings its rule gives it
(rules/figures.smk, rules/widedeep.smk), found here from the ci-tiny config and the result files
on disk. tests/test_figures.py uses it; it also serves to redraw figures by hand:

    python tests/figure_calls.py <workdir with results/> <out dir>
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from repatlas.model_ids import arch_label, arch_name_of, model_path, parse_model_id
from repatlas.steps import (
    cka_figures,
    ensembles_figures,
    infinite_figures,
    mitosis_ensemble_figures,
    mitosis_figures,
    redshift_figures,
    widedeep_figures,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "ci-tiny.yaml"


def _grid(config: dict) -> dict:
    return {"dataset": config["dataset"], "arch": config["grid"]["arch"], **config["grid"]}


def _model(g: dict, n, depth, width, seed) -> str:
    return model_path(dataset=g["dataset"], n=n, arch=g["arch"], depth=depth, width=width, seed=seed)


def _id(path: Path, side: int) -> dict:
    """Fields of model A (side 0) or B (side 1) of a results/cka/across/<A>__<B>.nc file."""
    return parse_model_id(path.stem.split("__")[side])


def figure_calls(workdir: Path, config_path: Path = TINY) -> dict:
    """Figure name → function(out_paths) drawing it with its step from `workdir`/results."""
    config = yaml.safe_load(Path(config_path).read_text())
    res = Path(workdir) / "results"
    g = _grid(config)
    n0, seeds = g["n"][0], sorted(g["seed"])
    block = {"threshold": 0.9, "min_length": 3, "min_pc1_share": 0.5}  # the schema's defaults
    calls = {}

    first = [{"depth": d, "width": w, "n": n0, "seed": seeds[0]} for d in g["depth"] for w in g["width"]]
    within = [res / "cka/within" / f"{_model(g, **c)}.nc" for c in first]
    calls["cka_within_grid"] = lambda out: cka_figures.cka_grid_figure(
        within, [{"depth": c["depth"], "width": c["width"]} for c in first], out, row="depth", col="width",
        title="within-model CKA")
    across = sorted((res / "cka/across").glob("*.nc"))
    same_n = [p for p in across if _id(p, 0)["n"] == n0]
    seed_pairs = [p for p in same_n if _id(p, 0)["seed"] == seeds[0] and _id(p, 1)["seed"] == seeds[1]
                  and (_id(p, 0)["depth"], _id(p, 0)["width"]) == (_id(p, 1)["depth"], _id(p, 1)["width"])]
    calls["cka_across_seeds"] = lambda out: cka_figures.cka_grid_figure(
        seed_pairs, [{k: _id(p, 0)[k] for k in ("depth", "width")} for p in seed_pairs], out, row="depth",
        col="width", title="cross-seed CKA", xlabel=f"layer (seed {seeds[1]})",
        ylabel=f"layer (seed {seeds[0]})")
    arch_pairs = [p for p in same_n if _id(p, 0)["seed"] == seeds[0] and _id(p, 1)["seed"] == seeds[0]
                  and (_id(p, 0)["depth"], _id(p, 0)["width"]) != (_id(p, 1)["depth"], _id(p, 1)["width"])]

    def arch_cell(p):
        a, b = _id(p, 0), _id(p, 1)
        return {"seed": a["seed"], "models": f"{arch_label(**a)} (A) vs {arch_label(**b)} (B)"}

    calls["cka_across_archs"] = lambda out: cka_figures.cka_grid_figure(
        arch_pairs, [arch_cell(p) for p in arch_pairs], out, row="seed", col="models",
        title="cross-architecture CKA", xlabel="layer of B", ylabel="layer of A")
    data_grid = [{"n": n, "width": w, "depth": max(g["depth"]), "seed": seeds[0]}
                 for n in g["n"] for w in g["width"]]
    calls["cka_data_grid"] = lambda out: cka_figures.cka_grid_figure(
        [res / "cka/within" / f"{_model(g, **c)}.nc" for c in data_grid],
        [{"n": c["n"], "width": c["width"]} for c in data_grid], out, row="n", col="width",
        title="within-model CKA vs width and training-set size",
        first_pc_paths=[res / "widedeep/pca" / f"{_model(g, **c)}.nc" for c in data_grid], **block)

    every = [{"depth": d, "width": w, "n": n, "seed": s}
             for n in g["n"] for d in g["depth"] for w in g["width"] for s in g["seed"]]
    calls["widedeep_blocks"] = lambda out: widedeep_figures.widedeep_figure(
        "blocks", [res / "widedeep/blocks.csv"], out, cells=every, title="largest CKA block", **block)
    calls["widedeep_pca"] = lambda out: widedeep_figures.widedeep_figure(
        "pca", [res / "widedeep/pca" / f"{_model(g, **c)}.nc" for c in first], out, cells=first,
        within=within, title="blocks and the first principal component", **block)
    calls["widedeep_probes"] = lambda out: widedeep_figures.widedeep_figure(
        "probes", [res / "widedeep/probes" / f"{_model(g, **c)}.nc" for c in every], out, cells=every,
        title="linear probe accuracy through the network", **block)
    calls["widedeep_pruning"] = lambda out: widedeep_figures.widedeep_figure(
        "pruning", [res / "widedeep/pruning" / f"{_model(g, **c)}.nc" for c in every], out, cells=every,
        within=[res / "cka/within" / f"{_model(g, **c)}.nc" for c in every],
        first_pc=[res / "widedeep/pca" / f"{_model(g, **c)}.nc" for c in every],
        title="removing one residual block", **block)
    for path in sorted((res / "widedeep/errors").glob("*.nc")):
        ga, gb = path.stem.split("__")
        calls[f"widedeep_errors_{path.stem}"] = lambda out, path=path, ga=ga, gb=gb: \
            widedeep_figures.errors_figure_to_file(path, out, label_a=arch_name_of(ga),
                                                   label_b=arch_name_of(gb),
                                                   title=f"per-example errors, {ga} vs {gb}")

    rs = config["redshift"]
    depth, scale, fixed = (rs.get("figure_depth", 2), rs.get("figure_scale", 10.0),
                           {"width": 64, "variant": "plain"})
    sweeps = rs["sweeps"]
    lines = {
        "scale": dict(sweep="scale", x="scale", hue="activation", logx=True,
                      select={**fixed, "depth": depth}),
        "depth": dict(sweep="scale", x="depth", hue="activation", logx=False,
                      select={**fixed, "scale": scale}),
        "width": dict(sweep="width", x="width", hue="activation", logx=True,
                      select={"variant": "plain", "depth": sweeps["width"]["depth"][0],
                              "scale": max(sweeps["width"]["scale"])}),
        "variant": dict(sweep="variant", x="scale", hue="variant", col="activation", logx=True,
                        select={"width": sweeps["variant"].get("width", [64])[0],
                                "depth": sweeps["variant"]["depth"][0]}),
    }
    for name, spec in lines.items():
        spec = dict(spec)
        sweep = spec.pop("sweep")
        calls[f"redshift_{name}"] = lambda out, sweep=sweep, spec=spec: redshift_figures.lines_figure(
            res / f"complexity/{sweep}.nc", out, title=f"complexity, {sweep} sweep", **spec)
    calls["redshift_heatmap"] = lambda out: redshift_figures.heatmap_figure(
        res / "complexity/scale.nc", out, select=fixed,
        title="Fourier complexity of random MLPs, mean over seeds")
    calls["redshift_chebyshev_degrees"] = lambda out: redshift_figures.chebyshev_figure(
        res / "complexity/chebyshev_degrees.nc", out, title="Chebyshev complexity vs maximum degree D")
    calls["redshift_summod"] = lambda out: redshift_figures.summod_figure(
        res / "complexity/summod.nc", out, title="sum-mod-M: test accuracy vs the target's complexity")
    calls["redshift_functions"] = lambda out: redshift_figures.functions_figure(
        out, grid_size=rs["grid_size"], activations=["relu", "tanh", "sin", "gaussian"],
        scales=[1.0, 5.0, 25.0], depth=depth, endpoint=False, title="random MLPs on [-1, 1]²")

    inf = {"cookbook_mlp": ("cookbook_figure", "cookbook-mlp.nc"),
           "cookbook_resnet": ("cookbook_figure", "cookbook-resnet.nc"),
           "ntk_convergence": ("ntk_convergence_figure", "ntk_convergence.nc"),
           "cookbook_gap": ("cookbook_gap_figure", "cookbook_gap.nc")}
    inf["regression"] = ("regression_figure", next((res / "infinite").glob("regression-*.nc")).name)
    inf["conv_regression"] = ("conv_regression_figure",
                              next((res / "infinite").glob("conv_regression-*.nc")).name)
    for name, (builder, file) in inf.items():
        if (res / "infinite" / file).exists():
            calls[f"infinite_{name}"] = lambda out, builder=builder, file=file: \
                infinite_figures.infinite_figure(builder, res / "infinite" / file, out,
                                                 title=f"infinite width: {file}")

    chunks = sorted((res / "mitosis/chunks").glob("*/*/*/*.nc"))

    def mitosis_cell(path):
        arch, _, width = re.fullmatch(r"(\w+)-d(\d+)-w(\d+)", path.parent.parent.name).groups()
        return {"arch": arch, "regime": path.parent.name, "width": int(width), "seed": int(path.stem[1:])}

    converged = [p for p in chunks if p.parent.name == "converged"]
    for name, paths in (("chunks", converged), ("clones", converged), ("training", chunks)):
        calls[f"mitosis_{name}"] = lambda out, name=name, paths=paths: mitosis_figures.mitosis_figure(
            f"mitosis_{name}_figure", paths, [mitosis_cell(p) for p in paths], out, title="mitosis")
    ens = config["mitosis"]["ensemble"]
    arch = ens.get("arch", "mlp")
    features = res / "mitosis/features" / f"{g['dataset']}-n{config['mitosis']['n']}"
    wide_width = max(config["mitosis"]["archs"][arch]["widths"])
    wide = next(features.glob(f"{arch}-d*-w{wide_width}/converged/s0.npz"))
    members = [next(features.glob(f"{arch}-d*-w{ens['width']}/converged/s{s}.npz"))
               for s in range(ens["members"])]
    calls["mitosis_ensemble"] = lambda out: mitosis_ensemble_figures.ensemble_figure(
        wide, members, out, arch=arch, wide_width=wide_width, narrow_width=ens["width"],
        title=f"widest {arch} vs an ensemble of narrow ones")

    e = res / "ensembles"
    data = sorted(p.name.removesuffix("-dropping.nc") for p in e.glob("*-dropping.nc"))
    regimes = ["feature", "ntk"]
    pairs = [(d, r) for d in data for r in regimes]
    title = "ensembles and distillation"
    calls["ensembles_methods"] = lambda out: ensembles_figures.ensembles_figure(
        "methods", out, summary_csv=e / "summary.csv", title=title)
    calls["ensembles_mu"] = lambda out: ensembles_figures.ensembles_figure(
        "mu", out, summary_csv=e / "summary.csv", title=title)
    calls["ensembles_size"] = lambda out: ensembles_figures.ensembles_figure(
        "size", out, summary_csv=e / "summary.csv", data_paths=[e / f"{d}-{r}.nc" for d, r in pairs],
        labels=[list(p) for p in pairs], title=title)
    calls["ensembles_dropping"] = lambda out: ensembles_figures.ensembles_figure(
        "dropping", out, summary_csv=e / "summary.csv", data_paths=[e / f"{d}-dropping.nc" for d in data],
        labels=data, title=title)
    return calls


if __name__ == "__main__":
    workdir, out = Path(sys.argv[1]), Path(sys.argv[2])
    only = set(sys.argv[3:])
    for name, draw in figure_calls(workdir).items():
        if not only or name in only:
            draw([out / f"{name}.png", out / f"{name}.pdf"])
            print("drew", name, flush=True)
