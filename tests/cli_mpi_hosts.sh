#!/usr/bin/env bash
# Multi-host MPI: two "hosts" are network namespaces made by this test (veth
# pairs on a bridge), ranks are started in them through ip netns exec instead of
# ssh, so gradients really cross a TCP/IP stack. The result must equal a 2-rank
# run on one host. The namespaces and the bridge are removed at exit.
source "$(dirname "$0")/lib_cli.sh"
source "$TESTS_DIR/mpi_env.sh"
if ! ip netns add "cgprobe$$" 2>/dev/null; then
  skip 1 "multi-host MPI test: network namespaces are not available here (needs root and iproute2)"; report; exit
fi
ip netns del "cgprobe$$"
tag=$(( $$ % 200 + 20 ))
net="10.233.$tag"
bridge="cgbr$tag"
map="$WORK/hostmap"; mkdir -p "$map"
cleanup() {
  for i in 1 2; do ip netns del "cg${tag}h$i" 2>/dev/null; ip link del "cg${tag}v$i" 2>/dev/null; done
  ip link del "$bridge" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
ip link add "$bridge" type bridge && ip addr add "$net.1/24" dev "$bridge" && ip link set "$bridge" up
for i in 1 2; do
  ns="cg${tag}h$i"
  ip netns add "$ns"
  ip link add "cg${tag}v$i" type veth peer name eth0 netns "$ns"
  ip link set "cg${tag}v$i" master "$bridge" up
  ip -n "$ns" addr add "$net.1$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  echo "$ns" > "$map/$net.1$i"
done
cd "$WORK"
make_mnist_test_lmdb mnist_lmdb
sed "s|fashion_mnist_train_lmdb|mnist_lmdb|" "$TESTS_DIR/../examples/fashion_mnist/lenet_train_test.prototxt" |
  python3 -c "import re,sys; t=sys.stdin.read(); print('\n'.join(b for b in re.split(r'\n(?=layer \{)', t) if 'phase: TEST' not in b))" > net.prototxt
for run in local hosts; do
  printf 'net: "net.prototxt"\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: "fixed"\ndisplay: 0\nmax_iter: 30\nsnapshot_prefix: "%s"\nrandom_seed: 1701\n' "$run" > "$run.prototxt"
done
check "2 ranks on one host" mpirun -np 2 "$CAFFEGRID" train -solver local.prototxt > local.log 2>&1
before=$(cat /sys/class/net/cg${tag}v1/statistics/rx_bytes)
check "2 ranks on two namespace hosts" env CG_NETNS_MAP="$map" mpirun -np 2 --host "$net.11,$net.12" \
  --mca plm_rsh_agent "$TESTS_DIR/netns_agent.sh" --mca btl tcp,self \
  --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24" \
  "$CAFFEGRID" train -solver hosts.prototxt -connection ethernet > hosts.log 2>&1
after=$(cat /sys/class/net/cg${tag}v1/statistics/rx_bytes)
crossed=$(( (after - before) / 1048576 ))
echo "host 1's link carried $crossed MiB"
check "gradients crossed the network (30 iterations x 1.7 MB, got $crossed MiB)" test "$crossed" -ge 30
check "same weights as on one host" cmp -s local_iter_30.caffemodel hosts_iter_30.caffemodel
[ -s hosts.log ] && grep -q "Data-parallel training on 2 ranks" hosts.log; check "rank 0 logged the job" test $? -eq 0
report
