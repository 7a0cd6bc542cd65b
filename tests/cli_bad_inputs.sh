#!/usr/bin/env bash
# The bad-input catalogue (tests/bad_inputs/cases.txt): every case must exit non-zero
# without crashing (exit < 128, no sanitizer report), print its exact message and
# leave no partial output. Then: the fuzz seeds and crash regressions replayed
# (fuzz/corpus/, through $BUILD/fuzz/fuzz_*), and a snapshot that runs out of disk
# (a 2 MB tmpfs when one can be mounted, else a forced failure) must leave the
# previous snapshot intact and say so.
source "$(dirname "$0")/lib_cli.sh"
ROOT=$(cd "$TESTS_DIR/.." && pwd)
BUILD_DIR=$ROOT/${BUILD:-build}
CG=$CAFFEGRID
IM=$SHARED_DATA/images/
IN=$WORK/in
cp -r "$TESTS_DIR/bad_inputs" "$IN"
cd "$IN"
sed -i "s|@IMAGES@|$IM|" ./*.prototxt

# ---- inputs made here (binary, or too big to keep) ----
mkdir -p snap
"$CG" train -solver tiny_solver.prototxt >/dev/null 2>&1 || true # snap/tiny_iter_2.{caffemodel,solverstate,cgstate}
check "setup: the tiny net trains and snapshots" test -s snap/tiny_iter_2.caffemodel -a -s snap/tiny_iter_2.solverstate
head -c 40 snap/tiny_iter_2.caffemodel > trunc.caffemodel
: > empty.caffemodel
printf 'garbage\377\377\377' > corrupt.solverstate
head -c 10 snap/tiny_iter_2.solverstate > trunc.solverstate
printf '\010\001\020' > trunc_mean.binaryproto
printf '00000000\nnot a datum at all \377\377\n' | mdb_load -T -n corrupt.mdb
# a Datum of 4194304 x 2097152 x 2097152 holding nothing: the product wraps to 0 in 64 bits
printf '00000000\n\\08\\80\\80\\80\\02\\10\\80\\80\\80\\01\\18\\80\\80\\80\\01\\28\\01\n' | mdb_load -T -n wrapping.mdb
"$CG" convert seqfile "$IM" l_ok.txt ok.seq >/dev/null 2>&1
head -c 150 ok.seq > trunc.seq
"$CG" convert imageset "$IM" l_ok.txt ok_db >/dev/null 2>&1
printf 'hello world' > notidx
gzip -dc "$SHARED_DATA/mnist/t10k-images-idx3-ubyte.gz" | head -c 1000 > trunc_images
echo "old results" > results.txt
mkdir -p feats && touch feats/_SUCCESS
check "setup: inputs made" test -s corrupt.mdb -a -s trunc_images
have_images=0
have_data images/mnist_png/img_7_0.png images/bad && have_images=1 # the [images] cases skip without them
[ $have_images = 1 ] && check "setup: inputs made from the images" test -s ok.seq -a -d ok_db

# ---- the catalogue ----
sanitizer_report() { grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer" <<<"$1"; }
cases=0
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  name=${line%% :: *}; rest=${line#* :: }
  expected=${rest%% :: *}; rest=${rest#* :: }
  leftover=${rest%% :: *}; command=${rest#* :: }
  cases=$((cases + 1))
  if [[ "$name" == *" [images]" ]] && [ $have_images = 0 ]; then cli_skipped=$((cli_skipped + 1)); continue; fi
  out=$(CG=$CG IM=$IM SHARED_DATA=$SHARED_DATA bash -c "$command" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then fail "$name: exit 0, expected an error"; continue; fi
  if [ $rc -ge 128 ] || sanitizer_report "$out"; then fail "$name: crashed (exit $rc): $out"; continue; fi
  if [[ "$out" != *"$expected"* ]]; then fail "$name: message lacks '$expected': $out"; continue; fi
  if [ "$leftover" != "-" ] && compgen -G "$leftover*" >/dev/null; then
    fail "$name: left '$leftover' behind"; continue
  fi
  if compgen -G "*.tmp.*" >/dev/null || compgen -G "*/*.tmp.*" >/dev/null; then
    fail "$name: left a temporary file: $(ls -d ./*.tmp.* ./*/*.tmp.* 2>/dev/null)"; rm -f ./*.tmp.* ./*/*.tmp.*; continue
  fi
  pass
done < "$TESTS_DIR/bad_inputs/cases.txt"
check "the catalogue holds at least 30 cases ($cases)" test $cases -ge 30
# a PNG whose tEXt chunk declares 2 GB in 155 bytes: refused without allocating it (libpng
# used to malloc and clear the declared length first: 1.9 GB of RSS)
max_rss_kb() { python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"; }
rss=$(max_rss_kb "$CG" test -model imagedata_huge_chunk.prototxt -iterations 1)
check "a 2 GB PNG chunk in a 155-byte file is refused within 300 MB (peak RSS $rss KB)" test "${rss:-999999999}" -lt 300000
check "test -output left the existing file alone" grep -qx "old results" results.txt

# ---- fuzz seeds and crash regressions ----
for bin in "$BUILD_DIR"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  t=${bin##*/fuzz_}
  out=$("$bin" "$ROOT/fuzz/corpus/$t" 2>&1); rc=$?
  if [ $rc -ne 0 ] || sanitizer_report "$out"; then fail "fuzz corpus $t replays cleanly (exit $rc): $out"; else pass; fi
done

# ---- out of disk during a snapshot ----
cat > big.prototxt <<'NET'
name: "big"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 2 dim: 4 } shape { dim: 2 } data_filler { type: "uniform" } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 30000 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
NET
mkdir -p small_disk
if mount -t tmpfs -o size=2m tmpfs small_disk 2>/dev/null; then
  how="a full 2 MB tmpfs" # one snapshot (600 KB weights + 600 KB momentum) fits, the second does not
  trap 'umount "$IN/small_disk" 2>/dev/null; rm -rf "$WORK"' EXIT
else
  how="a forced failure" # the second snapshot's solverstate path is taken by a directory
  mkdir -p small_disk/big_iter_4.solverstate
fi
printf 'net: "big.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmomentum: 0.9\nmax_iter: 4\nsnapshot: 2\nsnapshot_prefix: "small_disk/big"\n' > big_solver.prototxt
out=$("$CG" train -solver big_solver.prototxt 2>&1); rc=$?
check "disk full ($how): train fails (exit $rc)" test $rc -ne 0 -a $rc -lt 128
check "disk full ($how): the message names the intact previous snapshot" \
  grep -q "snapshot at iteration 4 failed (the previous snapshot small_disk/big_iter_2.solverstate is intact)" <<<"$out"
check "disk full ($how): iteration 2's snapshot is complete" \
  test -s small_disk/big_iter_2.caffemodel -a -s small_disk/big_iter_2.solverstate -a -s small_disk/big_iter_2.cgstate
check "disk full ($how): no partial iteration-4 files or temporaries" \
  bash -c "! ls small_disk | grep -qE 'big_iter_4\.(caffemodel|cgstate)|\.tmp\.'"
out=$("$CG" train -solver big_solver.prototxt -snapshot small_disk/big_iter_2.solverstate -iterations 3 2>&1)
check "disk full ($how): training resumes from the intact snapshot" grep -q "Restored solver state from small_disk/big_iter_2.solverstate at iteration 2" <<<"$out"
umount small_disk 2>/dev/null
cd "$ROOT"
report
