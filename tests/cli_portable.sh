#!/usr/bin/env bash
# Binaries that run on every node of a mixed cluster: the default build runs on an
# emulated Nehalem (x86-64-v2, no AVX) under qemu-user, training and timing LeNet and
# giving the same loss as on this CPU (the AVX2 kernels are chosen at run time).
# And a build without the optional libraries (make WITH_MPI=0 WITH_HDF5=0) works,
# answering an MPI launch and an HDF5 file with a message that says what is missing.
source "$(dirname "$0")/lib_cli.sh"
ROOT=$(cd "$TESTS_DIR/.." && pwd)
lenet=$ROOT/examples/nets/lenet_time.prototxt

# ---- the default build on a CPU without AVX
if ! command -v qemu-x86_64 >/dev/null; then
  skip 3 "qemu-x86_64 is not installed (scripts/setup.sh installs qemu-user)"
else
  out=$(qemu-x86_64 -cpu Nehalem "$CAFFEGRID" time -model "$lenet" -iterations 1 2>&1); rc=$?
  check "caffegrid time on an emulated Nehalem (exit $rc): $(tail -n 3 <<<"$out")" test $rc -eq 0
  check "it printed the total time" grep -q "Total Time:" <<<"$out"
  # the same forward loss with the run-time-chosen kernels here and the baseline ones there
  here=$("$CAFFEGRID" test -model "$lenet" -iterations 1 2>&1 | sed -n 's/.*] loss = \([0-9.e+-]*\).*/\1/p' | tail -n 1)
  there=$(qemu-x86_64 -cpu Nehalem "$CAFFEGRID" test -model "$lenet" -iterations 1 2>&1 |
    sed -n 's/.*] loss = \([0-9.e+-]*\).*/\1/p' | tail -n 1)
  check "LeNet's loss on Nehalem ($there) equals this CPU's ($here) to 1e-5" \
    python3 -c "import sys; sys.exit(0 if abs(float('${here:-nan}') - float('${there:-nan}')) <= 1e-5 else 1)"
fi

# ---- a build without MPI and HDF5 (quick: -O0, the CLI only)
minimal=$WORK/build-minimal
out=$(make -s -C "$ROOT" -j2 BUILD="$minimal" OPT=-O0 WITH_MPI=0 WITH_HDF5=0 "$minimal/caffegrid" 2>&1); rc=$?
check "make WITH_MPI=0 WITH_HDF5=0 builds (exit $rc): $(tail -n 5 <<<"$out")" test $rc -eq 0
check "it links neither libmpi nor libhdf5" bash -c "! ldd '$minimal/caffegrid' | grep -Eq 'libmpi|libhdf5'"
check "it times LeNet" bash -c "'$minimal/caffegrid' time -model '$lenet' -iterations 1 >/dev/null 2>&1"
expect_error "an MPI launch is refused, saying why" "built without MPI" \
  env OMPI_COMM_WORLD_SIZE=2 "$minimal/caffegrid" train -solver "$ROOT/tests/bad_inputs/tiny_solver.prototxt"
h5=$ROOT/tests/fixtures/caffe_ref/hdf5_bvlc_test_data/sample_data.h5
expect_error "an HDF5 file is refused, naming it" "sample_data.h5': this caffegrid was built without HDF5" \
  "$minimal/caffegrid" inspect "$h5"
printf '%s\n' "$h5" > "$WORK/h5_list.txt"
cat > "$WORK/h5_net.prototxt" <<NET
layer { name: "d" type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "$WORK/h5_list.txt" batch_size: 2 } }
NET
expect_error "an HDF5Data layer is refused, naming the file" "built without HDF5" \
  "$minimal/caffegrid" test -model "$WORK/h5_net.prototxt" -iterations 1
report
