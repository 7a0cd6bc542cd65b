#!/usr/bin/env bash
# Slurm: starts a one-node Slurm cluster (munged, slurmctld, slurmd from Debian's
# slurm-wlm) with its config, keys, sockets, state, spool, pid files and logs all in
# this test's temp dir, trains with `srun -n 2 --mpi=pmix` (Open MPI over PMIx), and
# checks the weights equal an `mpirun -np 2` run of the same solver bit for bit.
# Every daemon it started is stopped at exit. Without Slurm it says why and skips.
source "$(dirname "$0")/lib_cli.sh"
source "$TESTS_DIR/mpi_env.sh"
skip_slurm() { skip 1 "Slurm test: $*"; report; exit; } # the rest, counted as one skipped test
for c in munged munge slurmctld slurmd srun sinfo squeue scancel mpirun; do
  command -v "$c" >/dev/null || skip_slurm "$c is not installed (scripts/setup.sh installs slurm-wlm and munge)"
done
unset $(compgen -v SLURM_)  # never join an allocation this test might itself be running in
S=$WORK/slurm
mkdir -p "$S/munge" "$S/state" "$S/spool" "$S/log"
chmod 711 "$WORK" "$S" "$S/munge"  # munge clients must reach the socket's directory
export SLURM_CONF=$S/slurm.conf
pids=()
our_stepds() { # slurmstepd processes of this test's slurmd (they inherit its SLURM_CONF)
  local p
  for p in $(pgrep -x slurmstepd); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qxF "SLURM_CONF=$SLURM_CONF" && echo "$p"
  done
}
cleanup() {
  if [ -s "$S/slurmctld.up" ]; then  # end any job left by an interrupted run before its slurmd goes
    timeout 5 scancel --quiet --partition=cgtest 2>/dev/null
    for _ in $(seq 50); do [ -z "$(timeout 2 squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  local p i
  for _ in $(seq 50); do [ -z "$(our_stepds)" ] && break; sleep 0.1; done  # steps finish cleaning up
  for p in $(our_stepds); do kill -9 "$p"; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do  # slurmd, slurmctld, then munged
    p=${pids[i]}
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
logs() { for f in "$S"/log/*.log; do echo "--- $f"; tail -n 15 "$f"; done; }

# munge, with its own key and socket
dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$S/munge/munge.key"
sock=$S/munge/munge.socket
munged -F --key-file="$S/munge/munge.key" --socket="$sock" --pid-file="$S/munge/munged.pid" \
  --seed-file="$S/munge/munged.seed" --log-file="$S/log/munged.log" >>"$S/log/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
munge -S "$sock" -n 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 || { logs; skip_slurm "munged did not start"; }

# slurm.conf: one node, no cgroups; ports picked free; ranks bound one per core as mpirun binds them
host=$(hostname -s)
read -r ctld_port slurmd_port < <(python3 -c '
import socket; s = [socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]; print(*[x.getsockname()[1] for x in s])')
cpus=$(nproc)
task=task/affinity
if [ "$cpus" -lt 2 ]; then cpus=2 task=task/none; fi  # config_overrides lets one core pose as two
cat > "$SLURM_CONF" <<EOF
ClusterName=cgtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
PlugStackConfig=$S/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=$task
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=cgtest Nodes=$host Default=YES MaxTime=5 State=UP
EOF
: > "$S/plugstack.conf"
srun --mpi=list 2>&1 | grep -qw pmix || skip_slurm "Slurm has no pmix MPI plugin: $(srun --mpi=list 2>&1 | tr '\n' ' ')"
slurmctld -D -i -f "$SLURM_CONF" >>"$S/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N "$host" -f "$SLURM_CONF" >>"$S/log/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 150); do
  state=$(timeout 2 sinfo -h -n "$host" -o %T 2>/dev/null) && echo up > "$S/slurmctld.up"
  [ "$state" = idle ] && break
  sleep 0.1
done
[ "$state" = idle ] || { logs; cat "$S"/log/*.out; skip_slurm "the one-node Slurm cluster did not come up (node state '$state')"; }
start=$(date +%s.%N)
timeout 20 srun -n 2 --mpi=pmix true
launch_rc=$?
echo "srun -n 2 --mpi=pmix true: $(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')") s"
check "srun -n 2 --mpi=pmix starts a 2-task step" test $launch_rc -eq 0

# the same solver, launched by srun and by mpirun
cd "$WORK" || exit 1
make_mnist_test_lmdb mnist_lmdb
sed "s|fashion_mnist_train_lmdb|mnist_lmdb|" "$TESTS_DIR/../examples/fashion_mnist/lenet_train_test.prototxt" |
  python3 -c "import re,sys; t=sys.stdin.read(); print('\n'.join(b for b in re.split(r'\n(?=layer \{)', t) if 'phase: TEST' not in b))" > net.prototxt
for run in srun mpirun; do
  mkdir -p "$run"
  printf 'net: "net.prototxt"\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: "fixed"\ndisplay: 0\nmax_iter: 30\nsnapshot_prefix: "%s/lenet"\nrandom_seed: 1701\n' "$run" > "$run.prototxt"
done
timeout 60 srun -n 2 --mpi=pmix "$CAFFEGRID" train -solver srun.prototxt > srun.log 2>&1
check "srun -n 2 --mpi=pmix caffegrid train (exit $?)" test $? -eq 0
check "rank 0 logged 2 MPI ranks under srun" grep -q "Data-parallel training on 2 ranks (mpi)" srun.log
check "srun run wrote its final snapshot" test -s srun/lenet_iter_30.caffemodel
timeout 60 mpirun -np 2 "$CAFFEGRID" train -solver mpirun.prototxt > mpirun.log 2>&1
check "mpirun -np 2 caffegrid train (exit $?)" test $? -eq 0
check "srun and mpirun give the same weights, bit for bit" cmp srun/lenet_iter_30.caffemodel mpirun/lenet_iter_30.caffemodel

# a rank killed under srun ends the whole step, naming the lost task
printf 'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\ndisplay: 0\nmax_iter: 100000\nsnapshot: 5\nsnapshot_prefix: "killed/lenet"\nrandom_seed: 1701\n' > killed.prototxt
mkdir -p killed
timeout 60 srun -n 2 --mpi=pmix "$CAFFEGRID" train -solver killed.prototxt > killed.log 2>&1 &
launcher=$!
for _ in $(seq 300); do [ -e killed/lenet_iter_5.caffemodel ] && break; sleep 0.1; done
victim=""
for pid in $(pgrep -f "caffegrid train -solver killed.prototxt"); do
  tr '\0' '\n' 2>/dev/null </proc/$pid/environ | grep -qx "SLURM_PROCID=1" && victim=$pid
done
check "found task 1 to kill" test -n "$victim"
start=$(date +%s.%N)
[ -n "$victim" ] && kill -9 "$victim"
wait $launcher
rc=$?
elapsed=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")
echo "srun step ended ${elapsed}s after task 1 was killed (exit $rc)"
check "the step failed (exit $rc)" test $rc -ne 0 -a $rc -ne 124
check "the step ended within 10 s ($elapsed s)" python3 -c "import sys; sys.exit(0 if $elapsed < 10 else 1)"
check "srun names the lost task" grep -qE "task 1: Killed|rank 1 " killed.log
[ $cli_failed -eq 0 ] || { tail -n 5 srun.log mpirun.log killed.log; logs; }
report
