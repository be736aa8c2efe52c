# Targets and input functions of rules/ensembles.smk (ensembles and distillation) and of its figures.


def ensembles_results():
    return ensembles_files() + ["results/ensembles/summary.csv"]


def ensembles_figure_names():
    names = ["ensembles_methods", "ensembles_size", "ensembles_dropping"]
    return names + (["ensembles_mu"] if multiview_data() else [])


def multiview_data():
    """Data names of the multi-view sweep, e.g. 'multiview-mu0.1', mapped to their μ."""
    if "multiview" not in ENSEMBLES["data"]:
        return {}
    return {f"multiview-mu{mu:g}": mu for mu in ENSEMBLES["multiview"]["mu"]}


def ensembles_data():
    """Data names of the ensembles study: the study's dataset (by name) and/or the multi-view sweep."""
    names = [config["dataset"]] if "dataset" in ENSEMBLES["data"] else []
    return names + list(multiview_data())


def ensembles_files():
    methods = [f"results/ensembles/{d}-{r}.nc" for d in ensembles_data() for r in ENSEMBLES["regimes"]]
    return methods + [f"results/ensembles/{d}-dropping.nc" for d in ensembles_data()]


def ensembles_inputs(wildcards):
    """The study dataset's files, or nothing for the synthetic multi-view data."""
    if wildcards.data in multiview_data():
        return {}
    return {
        "full": f"results/data/{wildcards.data}/full.npz",
        "subset": f"results/data/{wildcards.data}/train-n{ENSEMBLES['n']}-s{config['subset_seed']}.npz",
    }


def ensembles_settings(wildcards):
    """What one ensembles job runs with (`repatlas.ensembles.study_setup`); as params, a change
    reruns only the jobs it concerns (the multi-view keys never rerun the dataset's jobs)."""
    shared = {k: ENSEMBLES[k] for k in ("seeds", "trials", "students", "temperature", "alpha")}
    mu = multiview_data().get(wildcards.data)
    if mu is not None:
        mv = ENSEMBLES["multiview"]
        data = {k: v for k, v in mv.items() if k not in ("mu", "network", "train")}
        return {**shared, "mu": mu, "data": data, "network": mv["network"], "train": mv["train"]}
    train = {k: ENSEMBLES[k] for k in ("epochs", "batch_size", "lr", "weight_decay")}
    return {**shared, "network": {k: ENSEMBLES[k] for k in ("width", "depth")}, "train": train}
