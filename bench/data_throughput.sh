#!/usr/bin/env bash
# Data pipeline throughput on this machine (decode + transform with 0, 1 and 2
# prefetch threads; LMDB reads), written as the "Data" section of docs/benchmarks.md.
#   bash bench/data_throughput.sh        (after `make`; SHARED_DATA defaults to ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
BUILD=${BUILD:-build}
make -s -j2 "$BUILD/caffegrid" "$BUILD/bench/data_throughput"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
load=$(cut -d' ' -f1 /proc/loadavg)
"$BUILD/caffegrid" convert imageset "$SHARED_DATA/images/" "$SHARED_DATA/images/images_list.txt" "$work/encoded_db" \
  --resize_height=256 --resize_width=256 --encode_type=jpg 2>/dev/null
rows=$("$BUILD/bench/data_throughput" "$SHARED_DATA" "$work/encoded_db")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
section=$(cat <<EOF
## Data

\`bash bench/data_throughput.sh\` on $(nproc) cores ($cpu), shared with other work (load average $load
at the start), so expect noise: while the cores are busy a second thread cannot help. Best of 3 runs. Threads are
prefetch threads (\`CAFFEGRID_DATA_THREADS\`); "0 (caller)" reads in the calling thread. Batches are identical
whatever the thread count.

| pipeline | threads | items/s |
|---|---|---|
$rows
EOF
)
mkdir -p docs
[ -f docs/benchmarks.md ] || printf '# Benchmarks\n' > docs/benchmarks.md
python3 - "$section" <<'PY'
import re, sys
path = "docs/benchmarks.md"
text = open(path).read()
section = sys.argv[1].rstrip("\n") + "\n"
pattern = re.compile(r"^## Data\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda m: section + ("\n" if m.end() < len(text) else ""), text, count=1)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
echo "$section"
