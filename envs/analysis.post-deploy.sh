#!/usr/bin/env bash
# Snakemake runs this inside envs/analysis.yaml's new conda env (--sdm conda): it installs repatlas
# itself, editable, from the workflow root that rules/common.smk exports as REPATLAS_ROOT, so jobs
# import the library of this checkout (whose edits rerun them, see library_of). The env file has
# every dependency already, hence --no-deps. By hand: REPATLAS_ROOT=$PWD bash envs/analysis.post-deploy.sh
set -euo pipefail
python -m pip install --no-deps --editable "${REPATLAS_ROOT:?REPATLAS_ROOT must be the repatlas workflow root (the folder holding pyproject.toml)}"
