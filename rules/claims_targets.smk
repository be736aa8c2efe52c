# Targets and input functions of rules/claims.smk (the claims ledger).

# Which config the "What reproduces" table is of: its files in merge order (config.yaml, then
# each --configfile over it), with a note when --config overrode keys. Exported, not a param, so
# that naming the same settings differently reruns nothing (every job parses this file again).
_CLI_CONFIGS = list(workflow.overwrite_configfiles or [])
CONFIG_NAME = " + ".join(
    dict.fromkeys(
        os.path.relpath(f, workflow.basedir) for f in workflow.configfiles[len(_CLI_CONFIGS) :] + _CLI_CONFIGS
    )
)
CONFIG_NAME += " with --config overrides" if workflow.config_settings.config else ""
os.environ.update(REPATLAS_CONFIGFILES=CONFIG_NAME)
CLAIM_STUDIES = ["wide_deep", "redshift", "infinite", "mitosis", "ensembles"]


def claims_inputs(wildcards):
    """The result files a study's claims read (repatlas.claims.REGISTRY), those this config makes."""
    if wildcards.study == "wide_deep":
        made = set(widedeep_outputs())
        files = {"blocks": "results/widedeep/blocks.csv", "errors": "results/widedeep/errors.csv"}
        return {k: f for k, f in files.items() if f in made}
    if wildcards.study == "redshift":
        sweeps = {"scale": "scale", "variant_sweep": "variant", "width_sweep": "width"}
        return {k: f"results/complexity/{s}.nc" for k, s in sweeps.items() if s in REDSHIFT["sweeps"]}
    if wildcards.study == "infinite":
        return {
            "cookbook_gap": "results/infinite/cookbook_gap.nc",
            "ntk_convergence": "results/infinite/ntk_convergence.nc",
            "regression": INFINITE_FIGURES["regression"]["data"],
            "conv_regression": conv_regression_file(),
        }
    return {"summary": f"results/{wildcards.study}/summary.csv"}  # mitosis, ensembles


def claims_outputs():
    """Every configured study's ledger and the table over them (part of the default target)."""
    return [f"results/claims/{s}.csv" for s in config["studies"]] + ["results/claims/what_reproduces.md"]
