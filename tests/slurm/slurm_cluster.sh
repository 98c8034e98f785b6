#!/usr/bin/env bash
# A real single-node SLURM on this machine, for the SLURM end-to-end test (tests/pipeline/test_slurm_e2e.py).
#
#   tests/slurm/slurm_cluster.sh start    install the Debian packages if missing, write the config, start the daemons
#   tests/slurm/slurm_cluster.sh stop     cancel what is left, stop the daemons by their PIDs, remove the PID files
#                                         and the config this script wrote
#   tests/slurm/slurm_cluster.sh status   exit 0 if the three daemons run (and say which do)
#
# Needs root and Debian's apt/dpkg. No systemd: the daemons are started directly. No accounting (slurmdbd): jobs are
# tracked with squeue, so MinJobAge keeps finished jobs visible for a while. Both subcommands are idempotent.
# Exit codes of `start`: 0 ready; 2 this machine cannot have it (not root, no apt/dpkg, packages not installable, or a
# slurm.conf this script did not write); 1 anything else (the daemon logs are printed).
set -euo pipefail

PACKAGES=(slurm-wlm slurmctld slurmd slurm-client munge)
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARKER="# Written by rlpipe tests/slurm/slurm_cluster.sh"
RUN_DIR=/run/slurm                      # slurmctld.pid and slurmd.pid (paths set in slurm.conf)
MUNGE_PID=/run/munge/munged.pid         # munged's default PID file
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
WAIT_IDLE=${SLURM_CLUSTER_WAIT:-30}     # seconds to wait for the node to be idle

say() { printf 'slurm_cluster: %s\n' "$*"; }
die() { local code=$1; shift; printf 'slurm_cluster: error: %s\n' "$*" >&2; exit "$code"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# pid_of NAME PIDFILE COMM: the PID in PIDFILE if that process is alive and is COMM (a reused PID is not ours)
pid_of() {
    local pidfile=$2 comm=$3 pid
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid && -r /proc/$pid/comm && $(cat "/proc/$pid/comm") == "$comm" ]] || return 1
    echo "$pid"
}

packages_missing() {
    local p missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
    done
    echo "${missing[*]}"
}

install_packages() {
    local missing t0 policy_added=0
    missing=$(packages_missing)
    if [[ -z $missing ]]; then
        say "packages already installed: ${PACKAGES[*]} (apt skipped)"
        return
    fi
    command -v apt-get >/dev/null || die 2 "apt-get not found: cannot install $missing"
    say "installing $missing (apt-get, --no-install-recommends)"
    t0=$(now)
    # No service may start from a package script (no systemd here; this script starts the daemons itself).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_added=1
    fi
    local rc=0
    {
        # -o DPkg::Lock::Timeout: wait for another apt run instead of failing at once
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends \
                "${PACKAGES[@]}"
    } >/tmp/slurm_cluster.apt.log 2>&1 || rc=$?
    [[ $policy_added == 1 ]] && rm -f /usr/sbin/policy-rc.d
    if [[ $rc != 0 ]]; then
        tail -n 20 /tmp/slurm_cluster.apt.log >&2
        die 2 "apt-get could not install ${PACKAGES[*]} (rc $rc, log /tmp/slurm_cluster.apt.log)"
    fi
    missing=$(packages_missing)
    [[ -z $missing ]] || die 2 "still not installed after apt-get: $missing"
    say "packages installed in $(since "$t0") s"
}

write_config() {
    local host cpus mem_kb real_mem
    if [[ -e $CONF ]] && ! grep -qxF "$MARKER" "$CONF"; then
        die 2 "$CONF exists and was not written by this script: not touching a real cluster's config"
    fi
    host=$(hostname -s)
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
    real_mem=$((mem_kb * 9 / 10 / 1024))   # MB, ~90% of RAM
    mkdir -p "$CONF_DIR" "$RUN_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"
    chown slurm:slurm "$LOG_DIR" "$STATE_DIR"
    cat >"$CONF.tmp" <<EOF
$MARKER
# A single-node test cluster without accounting: the status of jobs comes from squeue, so MinJobAge (how long
# slurmctld keeps a finished job) must be at least 3x the status-check interval of Snakemake's SLURM plugin.
ClusterName=rlpipe-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MinJobAge=300
MailProg=/bin/true
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
    chmod 644 "$CONF"
    say "wrote $CONF (node $host: CPUs=$cpus RealMemory=${real_mem} MB, no accounting, MinJobAge=300)"
}

start_munge() {
    if pid_of munged "$MUNGE_PID" munged >/dev/null; then
        say "munged already running (pid $(pid_of munged "$MUNGE_PID" munged))"
        return
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        say "created /etc/munge/munge.key"
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    rm -f "$MUNGE_PID"
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" || die 1 "munged did not start (see /var/log/munge/munged.log)"
    say "munged started (pid $(cat "$MUNGE_PID"))"
}

# start_daemon NAME: slurmctld or slurmd (both fork into the background and write the PID file named in slurm.conf)
start_daemon() {
    local name=$1 pidfile=$RUN_DIR/$1.pid pid i
    if pid=$(pid_of "$name" "$pidfile" "$name"); then
        say "$name already running (pid $pid)"
        return
    fi
    rm -f "$pidfile"
    "/usr/sbin/$name" || { tail -n 20 "$LOG_DIR/$name.log" >&2 || true; die 1 "$name did not start"; }
    for ((i = 0; i < 50; i++)); do
        pid=$(pid_of "$name" "$pidfile" "$name") && break
        sleep 0.1
    done
    [[ -n ${pid:-} ]] || { tail -n 20 "$LOG_DIR/$name.log" >&2 || true; die 1 "$name wrote no PID file $pidfile"; }
    say "$name started (pid $pid)"
}

wait_idle() {
    local host state deadline
    host=$(hostname -s)
    deadline=$((SECONDS + WAIT_IDLE))
    while ((SECONDS < deadline)); do
        state=$(sinfo -h -N -n "$host" -o '%T' 2>/dev/null | head -n 1 || true)
        case $state in
            idle|mixed|allocated) say "node $host is $state"; return ;;
            down*|drain*|drained*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.2
    done
    tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
    die 1 "node $host not idle after ${WAIT_IDLE} s (last state: '${state:-none}')"
}

start() {
    local t0
    [[ $(id -u) == 0 ]] || die 2 "must run as root (installs packages, starts daemons)"
    command -v dpkg-query >/dev/null || die 2 "dpkg not found: not a Debian-like system"
    install_packages
    t0=$(now)
    write_config
    start_munge
    start_daemon slurmctld
    start_daemon slurmd
    wait_idle
    say "daemons ready in $(since "$t0") s"
}

# stop_pidfile NAME PIDFILE COMM: TERM, then KILL after 10 s; the PID file goes in any case
stop_pidfile() {
    local name=$1 pidfile=$2 comm=$3 pid i
    if pid=$(pid_of "$name" "$pidfile" "$comm"); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            say "$name (pid $pid) killed"
        else
            say "$name (pid $pid) stopped"
        fi
    else
        say "$name not running"
    fi
    rm -f "$pidfile"
}

stop() {
    [[ $(id -u) == 0 ]] || die 2 "must run as root"
    if pid_of slurmctld "$RUN_DIR/slurmctld.pid" slurmctld >/dev/null && command -v squeue >/dev/null; then
        local jobs
        jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null | tr '\n' ' ' || true)
        if [[ -n ${jobs// /} ]]; then
            say "cancelling jobs left in the queue: $jobs"
            # shellcheck disable=SC2086  # one argument per job id
            timeout 10 scancel $jobs || true
            sleep 1
        fi
    fi
    stop_pidfile slurmd "$RUN_DIR/slurmd.pid" slurmd
    stop_pidfile slurmctld "$RUN_DIR/slurmctld.pid" slurmctld
    stop_pidfile munged "$MUNGE_PID" munged
    # Without a config, SLURM's commands fail at once instead of retrying a stopped controller for ~10 s: Snakemake's
    # SLURM plugin runs `scontrol show config` whenever Snakemake starts, even for a local run.
    if [[ -e $CONF ]] && grep -qxF "$MARKER" "$CONF"; then
        rm -f "$CONF"
        say "removed $CONF"
    fi
}

status() {
    local rc=0 name pid
    for name in munged slurmctld slurmd; do
        local pidfile=$RUN_DIR/$name.pid
        [[ $name == munged ]] && pidfile=$MUNGE_PID
        if pid=$(pid_of "$name" "$pidfile" "$name"); then say "$name running (pid $pid)"; else say "$name not running"; rc=3; fi
    done
    return $rc
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
