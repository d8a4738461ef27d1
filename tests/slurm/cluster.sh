#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on loopback, for the SLURM test (tests/slurm/).
#
#   tests/slurm/cluster.sh start STATE_DIR   install (Debian packages, as root), configure, start
#   tests/slurm/cluster.sh stop STATE_DIR    stop every daemon it started, by PID
#
# munged, MariaDB, slurmdbd, slurmctld and slurmd keep all their files (keys, configs, spool,
# database, logs, PID files) under STATE_DIR and listen on 127.0.0.1 only; nothing in /etc is
# written. Clients find the cluster through SLURM_CONF=STATE_DIR/conf/slurm.conf (printed by
# start) and, where that variable is dropped (the executor plugin's job steps), through the link
# /run/slurm/conf -> STATE_DIR/conf that SLURM's commands fall back to; stop removes it. A host
# with its own /etc/slurm/slurm.conf is refused: this is not for a real cluster's nodes.
# Accounting (slurmdbd + MariaDB) is on, so `sacct` works and the executor plugin's default
# status checks succeed. Ports: SLURM_TEST_PORT_BASE (default 16817) .. +2, MariaDB +3.
# Needs root: it installs packages and starts the daemons as root. Meant for CI or a spare VM.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop STATE_DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
action=$1
state=$(realpath -m "$2")
base=${SLURM_TEST_PORT_BASE:-16817}
ctld_port=$base slurmd_port=$((base + 1)) dbd_port=$((base + 2)) db_port=$((base + 3))
# Stop order: the reverse of the start order.
pidfiles=(slurmd.pid slurmctld.pid slurmdbd.pid db-run/mariadbd.pid munged.pid)

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

stop() {
    local pf pid
    for pf in "${pidfiles[@]}"; do
        [[ -f $state/$pf ]] || continue
        pid=$(cat "$state/$pf")
        if kill -TERM "$pid" 2>/dev/null; then
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        fi
        rm -f "$state/$pf"
    done
    [[ $(readlink /run/slurm/conf 2>/dev/null) == "$state/conf" ]] && rm -f /run/slurm/conf
    return 0
}

wait_for() { # wait_for SECONDS WHAT COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 4))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    die "$what did not come up within ${seconds}s; logs are in $state/log"
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurm-wlm)
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmdbd >/dev/null || missing+=(slurmdbd)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || die "needs ${missing[*]} and there is no apt-get to install them"
    echo "cluster.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$state/log/apt.log" 2>&1 || die "apt-get install failed: $state/log/apt.log"
}

start() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"
    for port in $ctld_port $slurmd_port $dbd_port $db_port; do
        if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port on 127.0.0.1 is in use; set SLURM_TEST_PORT_BASE to a free range"
        fi
    done
    [[ -e /etc/slurm/slurm.conf ]] && die "/etc/slurm/slurm.conf exists: this host is part of a real cluster"
    if [[ -e /run/slurm/conf || -L /run/slurm/conf ]] && [[ $(readlink /run/slurm/conf) != "$state/conf" ]]; then
        die "/run/slurm/conf exists and is not this test's: another SLURM runs here"
    fi
    mkdir -p "$state"/{conf,log,spool/ctld,spool/d,db,db-run} /run/slurm
    chmod 755 "$state"
    install_packages # creates the mysql user on a fresh machine
    runuser -u mysql -- test -x "$state" ||
        die "$state must be reachable by other users (MariaDB's mysql user); use a folder under /tmp"
    ln -sfn "$state/conf" /run/slurm/conf

    # munge, with its own key and socket
    [[ -f $state/munge.key ]] || mungekey --create --keyfile="$state/munge.key"
    /usr/sbin/munged --socket="$state/munge.sock" --key-file="$state/munge.key" \
        --pid-file="$state/munged.pid" --log-file="$state/log/munged.log" \
        --seed-file="$state/munged.seed"
    wait_for 10 munged bash -c "munge -S '$state/munge.sock' -n | unmunge -S '$state/munge.sock'"

    # MariaDB for slurmdbd: a private data folder, TCP on loopback
    chown mysql:mysql "$state/db" "$state/db-run"
    if [[ ! -d $state/db/mysql ]]; then
        mariadb-install-db --user=mysql --datadir="$state/db" >"$state/log/db-install.log" 2>&1 ||
            die "mariadb-install-db failed: $state/log/db-install.log"
    fi
    setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$state/db" \
        --socket="$state/db-run/mariadbd.sock" --pid-file="$state/db-run/mariadbd.pid" \
        --port="$db_port" --bind-address=127.0.0.1 --log-error="$state/db-run/mariadbd.log" \
        </dev/null >/dev/null 2>&1 &
    wait_for 30 MariaDB mariadb-admin --socket="$state/db-run/mariadbd.sock" ping
    mariadb --socket="$state/db-run/mariadbd.sock" -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmdbpass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL

    # slurm.conf: this host as the only node, its CPUs and 90 % of its memory
    local node host memory
    host=$(hostname -s)
    node=$(slurmd -C | head -n 1)
    memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((memory * 9 / 10))/" <<<"$node")
    cat >"$state/conf/slurm.conf" <<EOF
ClusterName=medimbalance
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge.sock
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$dbd_port
AccountingStoragePass=$state/munge.sock
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$state/conf/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$state/munge.sock
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$dbd_port
SlurmUser=root
LogFile=$state/log/slurmdbd.log
PidFile=$state/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=slurmdbpass
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$state/conf/slurmdbd.conf"
    export SLURM_CONF=$state/conf/slurm.conf

    /usr/sbin/slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster medimbalance >/dev/null || true # already there on a restart
    /usr/sbin/slurmctld
    /usr/sbin/slurmd
    wait_for 30 "an idle node" bash -c "sinfo -h -o %T | grep -q idle"
    echo "SLURM_CONF=$SLURM_CONF"
}

case $action in
start)
    # Whatever started before a failure is stopped again.
    trap 'status=$?; [[ $status -ne 0 ]] && stop; exit $status' EXIT
    start
    ;;
stop) stop ;;
*) usage ;;
esac
