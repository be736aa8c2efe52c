# repatlas: how width, depth, data size and seed shape what a network learns.
# This file is the study's table of contents; each stage lives in rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/activations.smk"
include: "rules/cka.smk"
include: "rules/widedeep.smk"
include: "rules/complexity.smk"
include: "rules/infinite.smk"
include: "rules/mitosis.smk"
include: "rules/ensembles.smk"
include: "rules/figures.smk"
include: "rules/claims.smk"


rule all:
    default_target: True
    input:
        default_study_outputs(),


onsuccess:
    print_outputs()
