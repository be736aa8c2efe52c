# What `snakemake` builds by default (the Snakefile's `all` target): every configured study's
# results and figures, each listed in the study's <stage>_targets.smk, and the claims ledgers.
STUDY_TARGETS = {
    # study: (its result files, its figure names)
    "wide_deep": (wide_deep_results, wide_deep_figure_names),  # widedeep_targets.smk (with cka_targets.smk)
    "redshift": (redshift_results, redshift_figure_names),  # complexity_targets.smk
    "infinite": (infinite_results, infinite_figure_names),  # infinite_targets.smk
    "mitosis": (mitosis_results, mitosis_figure_names),  # mitosis_targets.smk
    "ensembles": (ensembles_results, ensembles_figure_names),  # ensembles_targets.smk
}


FIGURES = [f for study in config["studies"] for name in STUDY_TARGETS[study][1]() for f in figure_files(name)]


def default_study_outputs():
    """What `snakemake` builds by default (the all target): every configured study's outputs."""
    results = [
        f for study, (files, _) in STUDY_TARGETS.items() if study in config["studies"] for f in files()
    ]
    return results + FIGURES + claims_outputs()


def print_outputs():
    """Where the figures are (only those that exist: a run may have built a subset of targets)."""
    for f in FIGURES:
        if Path(f).exists():
            print(f"repatlas: figure written to {Path(f).resolve()}")
