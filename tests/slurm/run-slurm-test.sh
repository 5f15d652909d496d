#!/usr/bin/env bash
# run-slurm-test.sh - end-to-end test of the Slurm profile on a real one-node
# Slurm cluster on localhost. Must run as root (it installs and starts Slurm).
#
#  1. slurm-up.sh; on exit, slurm-down.sh stops the daemons this run started
#     (a cluster that was already up stays up)
#  2. copies the workflow into a scratch dir and runs CONFIG through Slurm:
#       snakemake --profile profiles/slurm --profile tests/slurm/profile
#  3. checks with sacct that every non-local rule ran as a completed Slurm job
#  4. runs the same CONFIG locally in a second copy (--cores 2)
#  5. compares every results/<model>/<image>/<run>/MANIFEST.sha256 of the two
#
# Snakemake and the Slurm executor plugin must be importable by the `python`
# on PATH: the jobs run `python -m snakemake` on the node with this PATH.
#
# Environment: CONFIG (default tests/configs/tiny.yaml), TIMEOUT_S per
# Snakemake run (default 900), KEEP_SCRATCH=1 keeps the scratch dir,
# FILTERLENS_SRC: workflow to test (default: this repository).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "${FILTERLENS_SRC:-$HERE/../..}" && pwd)
CONFIG=${CONFIG:-tests/configs/tiny.yaml}
TIMEOUT_S=${TIMEOUT_S:-900}
STATE_DIR=${STATE_DIR:-/run/filterlens-slurm}
export STATE_DIR
COPY=(Snakefile config.yaml workflow envs profiles resources/images tests/configs tests/slurm/profile)

log() { echo "[slurm-test $(date +%T)] $*"; }
fail() { echo "[slurm-test] FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v t0="$1" -v t1="$(now)" 'BEGIN { printf "%.1f", t1 - t0 }'; }

[[ $(id -u) -eq 0 ]] || fail "must run as root (installs and starts Slurm daemons)"
python -c 'import snakemake, snakemake_executor_plugin_slurm' 2>/dev/null ||
  fail "python on PATH ($(command -v python || echo none)) lacks snakemake or snakemake-executor-plugin-slurm; activate the project environment"
for f in Snakefile "$CONFIG"; do [[ -e $SRC/$f ]] || fail "$SRC/$f not found"; done

scratch=$(mktemp -d /tmp/filterlens-slurm-test.XXXXXX)   # the node is this host
pids_before=$(cat "$STATE_DIR"/*.pid 2>/dev/null || true)
run_id=""
status=1
cleanup() {
  set +e
  [[ -n $run_id ]] && scancel --name "$run_id" 2>/dev/null   # left over after a timeout
  # stop only the daemons whose PID this run's slurm-up.sh recorded
  local started=() f
  for f in "$STATE_DIR"/*.pid; do
    [[ -f $f ]] && ! grep -qx "$(cat "$f")" <<<"$pids_before" && started+=("$(basename "$f" .pid)")
  done
  ((${#started[@]})) && "$HERE/slurm-down.sh" "${started[@]}"
  if ((status == 0)) && [[ ${KEEP_SCRATCH:-0} != 1 ]]; then rm -rf "$scratch"; else log "scratch dir kept: $scratch"; fi
}
trap cleanup EXIT

copy_workflow() {  # copy_workflow DEST
  mkdir -p "$1"
  (cd "$SRC" && for p in "${COPY[@]}"; do if [[ -e $p ]]; then cp -r --parents "$p" "$1/"; fi; done)
  find "$1" -name __pycache__ -prune -exec rm -rf {} +
}

# ------------------------------------------------------------------ cluster
t=$(now)
"$HERE/slurm-up.sh"
t_up=$(since "$t")

# ---------------------------------------------------------------- slurm run
copy_workflow "$scratch/slurm"
cd "$scratch/slurm"
log "Slurm run in $PWD"
t=$(now)
rc=0
timeout -k 30 "$TIMEOUT_S" snakemake --profile profiles/slurm --profile tests/slurm/profile \
  --configfile "$CONFIG" >snakemake.log 2>&1 || rc=$?
t_slurm=$(since "$t")
run_id=$(sed -n 's/.*SLURM run ID: \([^ ]*\).*/\1/p' snakemake.log | head -1)
if ((rc != 0)); then
  tail -n 60 snakemake.log
  ((rc == 124)) && fail "Slurm run timed out after ${TIMEOUT_S}s"
  fail "Slurm run failed (exit $rc), log: $PWD/snakemake.log"
fi
[[ -n $run_id ]] || fail "no 'SLURM run ID' in snakemake.log: did the run use the Slurm executor?"

# ------------------------------------------------------------- sacct check
# the plugin names every job after the run ID and puts the rule (or group)
# in the comment: rule_<rule>_wildcards_... / rule_<groupid>_<rules>_wildcards_...
sacct --allusers -X -n -P -S now-1days --name "$run_id" --format JobID,State,ExitCode,NodeList,AllocCPUS,ReqMem,Elapsed,Comment >sacct.tsv
echo "--- sacct (JobID|State|ExitCode|NodeList|AllocCPUS|ReqMem|Elapsed|Comment):"
cat sacct.tsv
n_jobs=$(wc -l <sacct.tsv)
((n_jobs > 0)) || fail "sacct knows no job of run $run_id"
bad=$(awk -F'|' '$2 != "COMPLETED" || $3 != "0:0"' sacct.tsv)
[[ -z $bad ]] || fail "Slurm jobs that did not complete:"$'\n'"$bad"
# Snakemake logs a job it runs through the executor as "rule X:" or "checkpoint X:",
# a local one as "localrule X:" or "localcheckpoint X:"
rules=$(sed -nE 's/^\s*(rule|checkpoint) ([A-Za-z_][A-Za-z0-9_]*):$/\2/p' snakemake.log | sort -u)
[[ -n $rules ]] || fail "no non-local rule in snakemake.log"
for r in $rules; do
  awk -F'|' '{ print $NF }' sacct.tsv | grep -qE "(^rule|_)_?${r}(_|\$)" || fail "rule $r has no Slurm job in sacct"
done
log "sacct: $n_jobs Slurm jobs, all COMPLETED; rules run through Slurm: $(echo $rules)"

# ---------------------------------------------------------------- local run
copy_workflow "$scratch/local"
cd "$scratch/local"
log "local run in $PWD"
t=$(now)
rc=0
timeout -k 30 "$TIMEOUT_S" snakemake --cores 2 --configfile "$CONFIG" >snakemake.log 2>&1 || rc=$?
t_local=$(since "$t")
((rc == 0)) || { tail -n 60 snakemake.log; fail "local run failed (exit $rc), log: $PWD/snakemake.log"; }

# -------------------------------------------------------- compare manifests
cd "$scratch"
manifests() { (cd "$1" && find results -path 'results/*/*/*/MANIFEST.sha256' | LC_ALL=C sort); }
m_slurm=$(manifests slurm)
[[ -n $m_slurm ]] || fail "the Slurm run wrote no results/<model>/<image>/<run>/MANIFEST.sha256"
[[ $m_slurm == "$(manifests local)" ]] ||
  fail "runs wrote different manifests:"$'\n'"$(diff <(echo "$m_slurm") <(manifests local))"
differ=0
for m in $m_slurm; do
  (cd "slurm/$(dirname "$m")" && sha256sum --quiet -c MANIFEST.sha256) || fail "slurm/$m does not match its files"
  if ! cmp -s "slurm/$m" "local/$m"; then
    differ=1
    echo "--- $m differs (< slurm, > local):"
    diff "slurm/$m" "local/$m" | grep '^[<>]' || true
  fi
done
((differ == 0)) || fail "Slurm and local results differ"
log "$(echo "$m_slurm" | wc -l) manifest(s) identical: $(echo $m_slurm)"

status=0
cat <<EOF
[slurm-test] PASS
  cluster start : ${t_up} s
  Slurm run     : ${t_slurm} s ($n_jobs Slurm submissions)
  local run     : ${t_local} s
EOF
