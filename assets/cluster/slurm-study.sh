#!/usr/bin/env bash
# A losslens study spread over a Slurm job array: every array task is one worker on the same
# shared output folder. By default the workers claim free units (runs, tuning runs, fine-tuning
# per target, CKA) through lock files in OUT/work/; a worker that dies (a failed node, a
# preempted or requeued task) leaves its unit to another worker once its lease has run out, and
# the unit resumes from its last checkpoint. The worker that finishes the last unit writes
# OUT/results.json and the tables; `losslens study STUDY.toml --out OUT --collect` writes them
# again at any later time without training.
#
#   sbatch --array=0-7 assets/cluster/slurm-study.sh STUDY.toml /shared/studies/OUT
#
# Settings (environment variables, exported to the job by sbatch):
#   LOSSLENS          the losslens binary (default: losslens on PATH)
#   LOSSLENS_SHARE    claim (default): any free unit; fixed: the units at places I, I+N, … of the
#                     plan, I the task's index in the array and N the array's size
#   LOSSLENS_LEASE    seconds a claim lives without its heartbeat (default 600)
#   LOSSLENS_DEVICE   auto (default), gpu, cpu (or cuda in a build with CUDA)
#   LOSSLENS_CACHE_DIR  a folder for decoded-image caches (default: losslens's own, ~/.cache)
#   LOSSLENS_DRY_RUN  1: print the worker's command and the study's units, change nothing
#
#SBATCH --job-name=losslens-study
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=2-00:00:00
#SBATCH --requeue
#SBATCH --output=%x-%A_%a.log
set -euo pipefail

usage="usage: sbatch --array=0-(N-1) slurm-study.sh STUDY.toml OUT"
study="${1:?$usage}"
out="${2:?$usage}"
losslens="${LOSSLENS:-losslens}"
task="${SLURM_ARRAY_TASK_ID:-0}"
first="${SLURM_ARRAY_TASK_MIN:-0}"
count="${SLURM_ARRAY_TASK_COUNT:-1}"

args=(study "$study" --out "$out" --device "${LOSSLENS_DEVICE:-auto}")
case "${LOSSLENS_SHARE:-claim}" in
  claim)
    args+=(--claim --lease "${LOSSLENS_LEASE:-600}")
    ;;
  fixed)
    args+=(--worker "$((task - first))/$count")
    ;;
  *)
    echo "LOSSLENS_SHARE must be claim or fixed, not ${LOSSLENS_SHARE}" >&2
    exit 2
    ;;
esac
if [ -n "${LOSSLENS_CACHE_DIR:-}" ]; then
  args+=(--cache-dir "$LOSSLENS_CACHE_DIR")
fi
if [ "${LOSSLENS_DRY_RUN:-0}" = 1 ]; then
  args+=(--dry-run)
fi
echo "array task $task on $(hostname): $losslens ${args[*]}" >&2
exec "$losslens" "${args[@]}"
