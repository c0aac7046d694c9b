#!/usr/bin/env bash
# A throw-away one-node Slurm cluster on this machine for the tests: its own munge key, config,
# ports, state and logs under DIR; daemons in the background, stopped by their recorded PIDs.
#
#   cluster.sh start DIR          start munged, slurmctld and slurmd; wait until the node is idle
#   cluster.sh stop DIR           cancel the cluster's jobs and stop its daemons, whatever state it is in
#   cluster.sh run DIR CMD...     start, run CMD with SLURM_CONF set, stop (also on failure or a signal)
#
# Clients reach this cluster through SLURM_CONF=DIR/slurm.conf. Exit code 77: Slurm or munge is
# not installed (scripts/setup installs them).
set -euo pipefail

daemons=(munged slurmctld slurmd)

usage() {
  sed -n '5,7s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

require_tools() {
  local tool
  for tool in "${daemons[@]}" mungekey sinfo scancel squeue; do
    if ! command -v "$tool" > /dev/null; then
      echo "cluster.sh: $tool not found: install slurm-wlm and munge (scripts/setup)" >&2
      exit 77
    fi
  done
}

# A TCP port on 127.0.0.1 that nothing listens on (from a range the system does not hand out).
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 10000))
    if ! (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
      echo "$port"
      return
    fi
  done
  echo "cluster.sh: no free TCP port found" >&2
  exit 1
}

# Containers have no cgroup delegation: track processes through /proc, bind no tasks, gather no
# accounting. Finished jobs stay visible to squeue for MinJobAge seconds.
write_config() {
  local dir=$1 node
  node=$(slurmd -C | head -n 1)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=sweeptest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
MailProg=/bin/true
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
MinJobAge=600
KillWait=10
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=60
PartitionName=urgent Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=2
CONF
}

# Runs a daemon in the foreground, in the background of this script, and records its PID.
launch() {
  local dir=$1 name=$2
  shift 2
  "$@" > "$dir/log/$name.out" 2>&1 < /dev/null &
  echo $! > "$dir/run/$name.pid-recorded"
}

wait_until_idle() {
  local dir=$1 state=""
  for _ in $(seq 60); do
    state=$(SLURM_CONF=$dir/slurm.conf sinfo -h -N -o %T 2> /dev/null | sort -u || true)
    [ "$state" = idle ] && return
    sleep 0.5
  done
  echo "cluster.sh: the node is not idle after 30 s (state: '${state:-no answer}'); logs in $dir/log" >&2
  tail -n 20 "$dir"/log/*.log "$dir"/log/*.out >&2 || true
  return 1
}

start() {
  local dir=$1
  require_tools
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ ${#dir} -gt 80 ]; then  # munge's socket path must fit a sockaddr_un (108 bytes)
    echo "cluster.sh: DIR is too long for munge's socket path (at most 80 characters): $dir" >&2
    exit 1
  fi
  stop "$dir"  # daemons a killed earlier run left behind
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
  chmod 755 "$dir/munge"
  rm -f "$dir/munge/munge.key"
  mungekey --create --keyfile="$dir/munge/munge.key"
  write_config "$dir"
  # --force: munged otherwise refuses a socket or key below a directory others may write to.
  launch "$dir" munged munged --foreground --force --socket="$dir/munge/munge.socket" \
    --key-file="$dir/munge/munge.key" --pid-file="$dir/run/munged.pid" --seed-file="$dir/munge/munged.seed" \
    --log-file="$dir/log/munged.log"
  for _ in $(seq 50); do
    [ -S "$dir/munge/munge.socket" ] && break
    sleep 0.1
  done
  # -c -i: start afresh, without the jobs of an earlier run.
  launch "$dir" slurmctld slurmctld -D -c -i -f "$dir/slurm.conf"
  launch "$dir" slurmd slurmd -D -f "$dir/slurm.conf"
  if ! wait_until_idle "$dir"; then
    stop "$dir"
    return 1
  fi
  echo "cluster.sh: Slurm cluster up: SLURM_CONF=$dir/slurm.conf"
}

# The PID recorded for a daemon, if that process is still this daemon.
running_pid() {
  local dir=$1 name=$2 pid
  pid=$(cat "$dir/run/$name.pid-recorded" 2> /dev/null) || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null | grep -q "$name" || return 1
  echo "$pid"
}

# Cancels every job of this cluster and waits (bounded) until their processes have ended.
cancel_jobs() {
  local dir=$1 jobs
  export SLURM_CONF=$dir/slurm.conf
  running_pid "$dir" slurmctld > /dev/null || return 0
  jobs=$(squeue -h -t all -o %A 2> /dev/null || true)
  [ -z "$jobs" ] && return 0
  scancel $jobs 2> /dev/null || true
  for _ in $(seq 30); do
    [ -z "$(squeue -h -t running,completing,suspended -o %A 2> /dev/null)" ] && return 0
    sleep 0.5
  done
  echo "cluster.sh: jobs still running after 15 s: $(squeue -h -o '%A %T' | tr '\n' ' ')" >&2
}

stop() {
  local dir=$1 name pid alive pids=()
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  cancel_jobs "$dir"
  for name in "${daemons[@]}"; do
    pid=$(running_pid "$dir" "$name") && pids+=("$pid")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2> /dev/null || true
    for _ in $(seq 50); do  # 5 s to shut down, then killed
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2> /dev/null && alive=1; done
      [ $alive = 0 ] && break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2> /dev/null || true
  fi
  rm -f "$dir"/run/*.pid-recorded
}

run() {
  local dir=$1
  shift
  [ $# -gt 0 ] || usage
  trap "stop $(printf %q "$dir")" EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  start "$dir"
  SLURM_CONF=$(cd "$dir" && pwd)/slurm.conf "$@"
}

[ $# -ge 2 ] || usage
command=$1
shift
case "$command" in
  start) start "$1" ;;
  stop) stop "$1" ;;
  run) run "$@" ;;
  *) usage ;;
esac
