#!/usr/bin/env bash
# slurm-down.sh [NAME...] - stop the daemons that slurm-up.sh started, by the
# PIDs it recorded in $STATE_DIR (never by process name), in reverse start order.
# NAMEs (slurmd slurmctld slurmdbd mariadb munged) limit this to those daemons;
# default: all recorded ones. Jobs still on the cluster are cancelled before
# slurmd stops, so that no slurmstepd outlives it.
# Idempotent; packages and configuration files stay installed. Must run as root.
set -uo pipefail
STATE_DIR=${STATE_DIR:-/run/filterlens-slurm}

log() { echo "[slurm-down $(date +%T)] $*"; }
[[ $(id -u) -eq 0 ]] || { echo "[slurm-down] ERROR: must run as root" >&2; exit 1; }
alive() { [[ -n ${1:-} && $(ps -p "$1" -o comm= 2>/dev/null || true) == "$2" ]]; }
wanted() { (($# == 0)) || [[ " $* " == *" $name "* ]]; }
names=("$@")

name=slurmd
if wanted "${names[@]}" && alive "$(cat "$STATE_DIR/slurmd.pid" 2>/dev/null)" slurmd; then
  jobs=$(squeue -h -o %i 2>/dev/null || true)
  if [[ -n $jobs ]]; then
    log "cancelling jobs: $(echo $jobs)"
    scancel $jobs 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do [[ -z $(squeue -h -t R,CG -o %i 2>/dev/null) ]] && break; sleep 0.5; done
  fi
fi

for entry in slurmd:slurmd slurmctld:slurmctld slurmdbd:slurmdbd mariadb:mariadbd munged:munged; do
  name=${entry%%:*} comm=${entry#*:} pidfile=$STATE_DIR/$name.pid
  wanted "${names[@]}" && [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  if alive "$pid" "$comm"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 60; i++)); do alive "$pid" "$comm" || break; sleep 0.5; done
    if alive "$pid" "$comm"; then log "$name still running after 30 s, SIGKILL"; kill -KILL "$pid"; fi
  else
    log "$name (pid $pid) was not running"
  fi
  rm -f "$pidfile"
done
# Without a controller, Slurm's clients wait ~9 s on every call; the Slurm executor plugin calls
# `scontrol show config` whenever Snakemake starts, even for local runs. Once the controller is
# gone, take our generated config away so they fail at once (slurm-up.sh writes it again).
if ! pgrep -x slurmctld >/dev/null && grep -qs "written by filterlens tests/slurm/slurm-up.sh" /etc/slurm/slurm.conf; then
  mv /etc/slurm/slurm.conf /etc/slurm/slurm.conf.filterlens-stopped
  log "moved the test cluster's slurm.conf aside"
fi
log "done"
