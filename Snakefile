# repatlas: how width, depth, data size and seed shape what a network learns.
# This file is the study's table of contents; each stage lives in rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# Setup shared by every stage: config checks, wildcard constraints, job resources, library inputs.
include: "rules/common.smk"
# The stages. A stage's targets and input functions are in its <stage>_targets.smk, its rules in
# <stage>.smk (snakemake --lint wants functions and rules in separate files).
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/activations.smk"
include: "rules/cka_targets.smk"
include: "rules/cka.smk"
include: "rules/widedeep_targets.smk"
include: "rules/widedeep.smk"
include: "rules/complexity_targets.smk"
include: "rules/complexity.smk"
include: "rules/infinite_targets.smk"
include: "rules/infinite.smk"
include: "rules/mitosis_targets.smk"
include: "rules/mitosis.smk"
include: "rules/ensembles_targets.smk"
include: "rules/ensembles.smk"
include: "rules/figures.smk"
include: "rules/claims_targets.smk"
include: "rules/claims.smk"
# What `snakemake` builds by default: every configured study's results, figures and claims.
include: "rules/targets.smk"


rule all:
    default_target: True
    input:
        default_study_outputs(),


onsuccess:
    print_outputs()
