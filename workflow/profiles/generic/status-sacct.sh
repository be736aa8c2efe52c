#!/usr/bin/env bash
# Job status for snakemake-executor-plugin-cluster-generic on SLURM: prints running, success or
# failed for the job id Snakemake got from `sbatch --parsable` (which may read "id;cluster").
set -u
jobid="${1%%;*}"
state=""
for attempt in 1 2 3 4 5; do
    # -X: the allocation only, not its steps; -n: no header; -P: parsable
    state=$(sacct -j "$jobid" -X -n -P -o State 2>/dev/null | head -n 1 | cut -d' ' -f1)
    [ -n "$state" ] && break
    # not yet in the accounting database, or sacct unavailable: ask the queue
    state=$(squeue -j "$jobid" -h -o %T 2>/dev/null | head -n 1)
    [ -n "$state" ] && break
    sleep 2
done
case "$state" in
    COMPLETED) echo success ;;
    PENDING|RUNNING|REQUEUED|RESIZING|SUSPENDED|CONFIGURING|COMPLETING|STAGE_OUT|SIGNALING|REQUEUE_HOLD|REQUEUE_FED|RESV_DEL_HOLD|"") echo running ;;
    *) echo failed ;;  # FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE
esac
