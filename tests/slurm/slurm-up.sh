#!/usr/bin/env bash
# slurm-up.sh - start a single-node Slurm cluster on localhost for the workflow's
# Slurm test (Debian 12, Slurm 22.05). Must run as root; no systemd needed.
#
# Installs slurmctld + slurmd + munge, and MariaDB + slurmdbd so that accounting
# (sacct) works: the Snakemake Slurm executor plugin polls job state with sacct
# and, without slurmdbd, waits forever without an error.
#
# Idempotent: a second run only (re)starts what is not running or whose config
# changed. Every daemon started here gets its PID written to $STATE_DIR/<name>.pid;
# slurm-down.sh stops exactly those PIDs and nothing else.
#
# Environment: STATE_DIR (default /run/filterlens-slurm), SLURM_PARTITION
# (default debug), WAIT_S (seconds to wait for an idle node, default 60).
set -euo pipefail

STATE_DIR=${STATE_DIR:-/run/filterlens-slurm}
PARTITION=${SLURM_PARTITION:-debug}
WAIT_S=${WAIT_S:-60}
CLUSTER=filterlens
NODE=localhost                    # fixed node name, independent of `hostname`
DB_PASS=filterlens-test           # local-only MariaDB account for slurmdbd
DB_SOCK=/run/mysqld/mysqld.sock

log() { echo "[slurm-up $(date +%T)] $*"; }
die() { echo "[slurm-up] ERROR: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
command -v apt-get >/dev/null || die "needs a Debian/Ubuntu host (apt-get not found)"

# alive PID COMM: PID is running and is the program COMM (guards against PID reuse)
alive() { [[ -n ${1:-} && $(ps -p "$1" -o comm= 2>/dev/null || true) == "$2" ]]; }
ours_alive() { alive "$(cat "$STATE_DIR/$1.pid" 2>/dev/null || true)" "$2"; }
wait_for() {  # wait_for SECONDS WHAT CMD...
  local t=$1 what=$2; shift 2
  for ((i = 0; i < t * 2; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "timeout after ${t}s waiting for $what (logs: /var/log/slurm, /var/log/munge)"
}
record() {  # record NAME PIDFILE COMM: wait for the daemon's pidfile, remember its PID
  local pid=""
  for ((i = 0; i < 40; i++)); do
    pid=$(cat "$2" 2>/dev/null || true)
    if alive "$pid" "$3"; then echo "$pid" >"$STATE_DIR/$1.pid"; log "$1 running, pid $pid"; return 0; fi
    sleep 0.5
  done
  die "$1 did not start (logs: /var/log/slurm, /var/log/munge)"
}
stop_ours() {  # stop_ours NAME COMM: stop a daemon only if this script started it
  local pid; pid=$(cat "$STATE_DIR/$1.pid" 2>/dev/null || true)
  if alive "$pid" "$2"; then
    log "stopping $1 (pid $pid)"; kill -TERM "$pid"
    for ((i = 0; i < 60; i++)); do alive "$pid" "$2" || break; sleep 0.5; done
    if alive "$pid" "$2"; then kill -KILL "$pid"; fi
  fi
  rm -f "$STATE_DIR/$1.pid"
}
install_if_changed() {  # install_if_changed MODE OWNER DEST < content; true if DEST changed
  local tmp; tmp=$(mktemp); cat >"$tmp"
  if cmp -s "$tmp" "$3"; then rm -f "$tmp"; return 1; fi
  install -m "$1" -o "$2" -g "$2" "$tmp" "$3"; rm -f "$tmp"; log "wrote $3"
}
mkdir -p "$STATE_DIR"

# ---------------------------------------------------------------- packages
pkgs=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  # keep the packages' maintainer scripts from starting services: we start
  # the daemons ourselves, with our config
  own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -q
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
  if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi
fi

# ------------------------------------------------------------------- munge
if [[ ! -s /etc/munge/munge.key ]]; then
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/log/munge /var/lib/munge
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "munged already answering"
else
  runuser -u munge -- /usr/sbin/munged
  record munged /run/munge/munged.pid munged
  wait_for 10 munge bash -c 'munge -n | unmunge'
fi

# -------------------------------------------------------------- slurm.conf
install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/log/slurm /run/slurm
install -d /var/lib/slurm/slurmd
# node hardware as slurmd sees it; RealMemory a bit below the real amount
hw=$(slurmd -C | head -1)
hwval() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
mem=$(($(hwval RealMemory) * 9 / 10)); ((mem > 100)) || mem=1000

conf_changed=0
install_if_changed 644 root /etc/slurm/slurm.conf <<EOF && conf_changed=1
# written by filterlens tests/slurm/slurm-up.sh
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no cgroups: works in containers and VMs without delegated cgroups
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# keep sbatch --comment in accounting: the executor plugin puts the rule name there
AccountingStoreFlags=job_comment
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(hwval CPUs) Boards=$(hwval Boards) SocketsPerBoard=$(hwval SocketsPerBoard) CoresPerSocket=$(hwval CoresPerSocket) ThreadsPerCore=$(hwval ThreadsPerCore) RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# --------------------------------------------------- MariaDB and slurmdbd
install -d -o mysql -g mysql /run/mysqld
if mariadb-admin --socket=$DB_SOCK ping >/dev/null 2>&1; then
  log "MariaDB already answering"
else
  [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=127.0.0.1 \
    --socket=$DB_SOCK --pid-file=/run/mysqld/mysqld.pid </dev/null >>/var/log/slurm/mariadb.log 2>&1 &
  wait_for 60 MariaDB mariadb-admin --socket=$DB_SOCK ping
  record mariadb /run/mysqld/mysqld.pid mariadbd
fi
mariadb --socket=$DB_SOCK <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
# slurmdbd refuses a config that is not mode 600 and owned by SlurmUser
dbd_changed=0
install_if_changed 600 slurm /etc/slurm/slurmdbd.conf <<EOF && dbd_changed=1
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DB_PASS
EOF
if ((dbd_changed)) || ! ours_alive slurmdbd slurmdbd; then
  stop_ours slurmdbd slurmdbd
  /usr/sbin/slurmdbd
  record slurmdbd /run/slurm/slurmdbd.pid slurmdbd
fi
wait_for 30 sacctmgr sacctmgr -n list cluster
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
  sacctmgr -i add cluster "$CLUSTER" >/dev/null && log "registered cluster $CLUSTER"
fi

# ----------------------------------------------------- slurmctld + slurmd
# both must run with the same slurm.conf: a change restarts both, otherwise
# the node stays in state "unk"
if ((conf_changed)) || ! ours_alive slurmctld slurmctld || ! ours_alive slurmd slurmd; then
  stop_ours slurmd slurmd
  stop_ours slurmctld slurmctld
  /usr/sbin/slurmctld
  record slurmctld /run/slurm/slurmctld.pid slurmctld
  wait_for 30 slurmctld scontrol ping
  /usr/sbin/slurmd -N "$NODE"
  record slurmd /run/slurm/slurmd.pid slurmd
else
  log "slurmctld and slurmd already running with this config"
fi

# ------------------------------------------------------- wait for the node
state=""
for ((i = 0; i < WAIT_S * 2; i++)); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
  case $state in
    idle | mixed | allocated) break ;;
    down* | drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
[[ $state =~ ^(idle|mixed|allocated)$ ]] ||
  die "node $NODE not ready (state '$state'); see /var/log/slurm/slurmctld.log and slurmd.log"
log "node $NODE is $state"
sinfo
