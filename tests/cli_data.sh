#!/usr/bin/env bash
# Data through the CLI: `convert imageset` and `compute_mean` (Caffe's convert_imageset
# and compute_image_mean), ImageData and Data layers under `caffegrid test`, and bad
# input — a missing file in a list, a truncated image, a corrupt Datum, a missing
# LMDB — each a clear message naming the file or record and a non-zero exit.
source "$(dirname "$0")/lib_cli.sh"
IM=$SHARED_DATA/images
# every check here reads the images of ../shared/data (which do not ship)
have_data images/mnist_png_list.txt images/images_list.txt images/bad_list.txt -- 37 || { report; exit; }

# convert imageset: 10 MNIST PNGs, keys "%08d_<path>" in list order, labels kept
out=$("$CAFFEGRID" convert imageset "$IM/" "$IM/mnist_png_list.txt" "$WORK/mnist_db" --gray 2>&1)
check "convert imageset reports the count" grep -q "Processed 10 files." <<<"$out"
check "10 entries" grep -q "Entries: 10" <<<"$(mdb_stat "$WORK/mnist_db")"
keys=$(mdb_dump -p "$WORK/mnist_db" | grep -c "^ 0000000[0-9]_mnist_png/img_")
check "keys are %08d_<path> (got $keys)" test "$keys" -eq 10
check "first key is line 0's path" grep -q "^ 00000000_mnist_png/img_7_0.png$" <<<"$(mdb_dump -p "$WORK/mnist_db")"
out=$("$CAFFEGRID" compute_mean "$WORK/mnist_db" "$WORK/mnist_mean.binaryproto" 2>&1)
check "compute_mean writes the mean" test -s "$WORK/mnist_mean.binaryproto"
check "compute_mean: one channel" grep -q "Number of channels: 1" <<<"$out"
# the mean of those 10 digits: printed value of channel 0 is the average grey level (> 0, < 255)
m=$(sed -n 's/.*mean_value channel \[0\]: \([0-9.e+-]*\)$/\1/p' <<<"$out")
check "mean grey level $m is in (20, 60)" python3 -c "import sys; sys.exit(0 if 20 < float('${m:-0}') < 60 else 1)"

# resized, shuffled, encoded variants
"$CAFFEGRID" convert imageset "$IM/" "$IM/images_list.txt" "$WORK/resized_db" --resize_height=32 --resize_width=48 --shuffle 2>/dev/null
check "resize + shuffle: 26 entries" grep -q "Entries: 26" <<<"$(mdb_stat "$WORK/resized_db")"
check "shuffled: the first key is not line 0" bash -c "! mdb_dump -p '$WORK/resized_db' | grep -q '^ 00000000_bvlc/cat.jpg$'"
"$CAFFEGRID" convert imageset "$IM/" "$IM/images_list.txt" "$WORK/resized_db2" --resize_height=32 --resize_width=48 --shuffle 2>/dev/null
check "shuffling is repeatable" cmp -s <(mdb_dump "$WORK/resized_db") <(mdb_dump "$WORK/resized_db2")
out=$("$CAFFEGRID" compute_mean "$WORK/resized_db" 2>&1)
check "compute_mean of resized colour images: 3 channels" grep -q "Number of channels: 3" <<<"$out"
"$CAFFEGRID" convert imageset "$IM/" "$IM/images_list.txt" "$WORK/png_db" --encode_type=png --resize_height=16 --resize_width=16 2>/dev/null
check "--encode_type=png writes 26 records" grep -q "Entries: 26" <<<"$(mdb_stat "$WORK/png_db")"
out=$("$CAFFEGRID" compute_mean "$WORK/png_db" "$WORK/png_mean" 2>&1)
check "encoded records decode for compute_mean" grep -q "Processed 26 files." <<<"$out"
"$CAFFEGRID" convert imageset "$IM/" "$IM/images_list.txt" "$WORK/jpg_db" --encoded --encode_type=jpg 2>/dev/null
check "--encoded jpg writes 26 records" grep -q "Entries: 26" <<<"$(mdb_stat "$WORK/jpg_db")"
expect_error "images of different sizes for compute_mean" "all must have one size" "$CAFFEGRID" compute_mean "$WORK/jpg_db"

# the layers under `caffegrid test`: ImageData over the PNG list, Data over the LMDB we made
cat > "$WORK/image_net.prototxt" <<EOF
name: "img"
layer { name: "d" type: "ImageData" top: "data" top: "label"
  image_data_param { source: "$IM/mnist_png_list.txt" root_folder: "$IM/" batch_size: 5 is_color: false } }
layer { name: "s" type: "Silence" bottom: "data" }
EOF
out=$("$CAFFEGRID" test -model "$WORK/image_net.prototxt" -iterations 2 2>&1)
check "ImageData labels in list order (batch 0)" grep -q "Batch 0, label = 7" <<<"$out"
check "ImageData labels in list order (batch 1)" grep -q "Batch 1, label = 4" <<<"$out"
sed "s|type: \"ImageData\"|type: \"Data\"|; s|image_data_param {.*|data_param { source: \"$WORK/mnist_db\" batch_size: 5 backend: LMDB } }|" \
  "$WORK/image_net.prototxt" > "$WORK/data_net.prototxt"
out=$("$CAFFEGRID" test -model "$WORK/data_net.prototxt" -iterations 2 2>&1)
check "Data over our LMDB: same labels" grep -q "Batch 1, label = 4" <<<"$out"
out2=$(CAFFEGRID_DATA_THREADS=0 "$CAFFEGRID" test -model "$WORK/data_net.prototxt" -iterations 2 2>&1 | grep "label =")
check "synchronous reading gives the same output" test "$(grep "label =" <<<"$out" | sed 's/^.*] //')" = "$(sed 's/^.*] //' <<<"$out2")"

# bad input
printf 'mnist_png/img_7_0.png 7\nmnist_png/img_9_99.png 9\n' > "$WORK/missing.txt"
expect_error "convert: missing file names the file" "img_9_99.png" "$CAFFEGRID" convert imageset "$IM/" "$WORK/missing.txt" "$WORK/m_db"
expect_error "convert: missing file names the list line" "missing.txt:2" "$CAFFEGRID" convert imageset "$IM/" "$WORK/missing.txt" "$WORK/m_db"
check "no half-written LMDB left behind" test ! -e "$WORK/m_db"
expect_error "convert: truncated image" "cat_truncated.jpg" "$CAFFEGRID" convert imageset "$IM/" "$IM/bad_list.txt" "$WORK/b_db"
expect_error "convert: truncated image says why" "Premature end of JPEG file" "$CAFFEGRID" convert imageset "$IM/" "$IM/bad_list.txt" "$WORK/b_db"
cat "$IM/bad_list.txt" "$IM/mnist_png_list.txt" | sed 's|^|'"$IM"'/|' > "$WORK/mixed.txt"
out=$(CAFFEGRID_SKIP_BAD_RECORDS=1 "$CAFFEGRID" convert imageset "" "$WORK/mixed.txt" "$WORK/mixed_db" --gray 2>&1)
check "CAFFEGRID_SKIP_BAD_RECORDS: convert skips and counts" grep -q "skipped 4 bad images of 14" <<<"$out"
check "CAFFEGRID_SKIP_BAD_RECORDS: the 10 good ones are stored" grep -q "Entries: 10" <<<"$(mdb_stat "$WORK/mixed_db")"
expect_error "convert: unknown --encode_type" "expected jpg or png" "$CAFFEGRID" convert imageset "$IM/" "$IM/mnist_png_list.txt" "$WORK/g_db" --encode_type=gif
expect_error "convert: existing output" "already exists" "$CAFFEGRID" convert imageset "$IM/" "$IM/mnist_png_list.txt" "$WORK/mnist_db"
expect_error "convert: missing list" "no_list.txt" "$CAFFEGRID" convert imageset "$IM/" "$WORK/no_list.txt" "$WORK/n_db"

# ImageData over a list with a truncated image: fails at that batch naming it; with skipping, counted at the end
sed 's|^|'"$IM"'/|' "$IM/mnist_png_list.txt" | head -3 > "$WORK/with_bad.txt"
echo "$IM/bad/cat_truncated.jpg 0" >> "$WORK/with_bad.txt"
sed "s|source: \"[^\"]*\" root_folder: \"[^\"]*\"|source: \"$WORK/with_bad.txt\"|; s|batch_size: 5|batch_size: 2|" \
  "$WORK/image_net.prototxt" > "$WORK/bad_image_net.prototxt"
expect_error "ImageData: truncated image named" "cat_truncated.jpg" "$CAFFEGRID" test -model "$WORK/bad_image_net.prototxt" -iterations 2
expect_error "skipping: a quarter of the records bad is more than the default CAFFEGRID_MAX_BAD_FRACTION" \
  "1 of the 4 records read so far from $WORK/with_bad.txt are bad, more than CAFFEGRID_MAX_BAD_FRACTION=0.1 allows" \
  env CAFFEGRID_SKIP_BAD_RECORDS=1 "$CAFFEGRID" test -model "$WORK/bad_image_net.prototxt" -iterations 4
expect_error "CAFFEGRID_MAX_BAD_FRACTION checked" "CAFFEGRID_MAX_BAD_FRACTION='2': expected a fraction above 0, at most 1" \
  env CAFFEGRID_MAX_BAD_FRACTION=2 "$CAFFEGRID" test -model "$WORK/bad_image_net.prototxt" -iterations 4
out=$(CAFFEGRID_SKIP_BAD_RECORDS=1 CAFFEGRID_MAX_BAD_FRACTION=0.3 "$CAFFEGRID" test -model "$WORK/bad_image_net.prototxt" -iterations 4 2>&1)
check "ImageData with skipping runs through" grep -q "Loss: 0" <<<"$out"
check "skipped records reported at the end" grep -q "Data layer 'd': skipped 2 bad records of 8 read" <<<"$out"

# a corrupt Datum (an LMDB made with mdb_load holding bytes that are no Datum)
printf 'VERSION=3\nformat=bytevalue\ntype=btree\nmapsize=1048576\nmaxreaders=126\nHEADER=END\n 3030303030303030\n ffffffffffff\n 3030303030303031\n 0801\nDATA=END\n' > "$WORK/corrupt.dump"
mkdir -p "$WORK/corrupt_db" && mdb_load -f "$WORK/corrupt.dump" "$WORK/corrupt_db"
sed "s|source: \"[^\"]*\" batch_size: 5|source: \"$WORK/corrupt_db\" batch_size: 1|" "$WORK/data_net.prototxt" > "$WORK/corrupt_net.prototxt"
expect_error "Data: corrupt Datum names the record" "record '00000000' in $WORK/corrupt_db is not a valid Datum" \
  "$CAFFEGRID" test -model "$WORK/corrupt_net.prototxt" -iterations 1
expect_error "compute_mean: corrupt Datum names the record" "'00000000'" "$CAFFEGRID" compute_mean "$WORK/corrupt_db"

# a missing LMDB
sed "s|source: \"[^\"]*\"|source: \"$WORK/gone_lmdb\"|" "$WORK/data_net.prototxt" > "$WORK/gone_net.prototxt"
expect_error "Data: missing LMDB named" "cannot open LMDB '$WORK/gone_lmdb'" "$CAFFEGRID" test -model "$WORK/gone_net.prototxt" -iterations 1
expect_error "compute_mean: missing LMDB named" "gone_lmdb" "$CAFFEGRID" compute_mean "$WORK/gone_lmdb"
expect_error "bad CAFFEGRID_DATA_THREADS" "CAFFEGRID_DATA_THREADS" env CAFFEGRID_DATA_THREADS=lots "$CAFFEGRID" test -model "$WORK/data_net.prototxt" -iterations 1

# databases are published whole: a reader polling while convert writes 60,000 records sees none or all of
# them; and an LMDB is written and read under an 8 GB address-space limit (Slurm --mem, YARN's vmem check)
if have_data fashion-mnist/train-images-idx3-ubyte.gz fashion-mnist/train-labels-idx1-ubyte.gz -- 3; then
  # ASan reserves terabytes of address space for its shadow memory: the limit is the normal build's to test
  limit="ulimit -v 8000000"; limited="under ulimit -v 8000000"
  case "$CAFFEGRID" in *build-san*) limit=":"; limited="(no address-space limit under ASan)" ;; esac
  ($limit; exec "$CAFFEGRID" convert mnist "$SHARED_DATA/fashion-mnist/train-images-idx3-ubyte.gz" \
    "$SHARED_DATA/fashion-mnist/train-labels-idx1-ubyte.gz" "$WORK/whole_db" 2>"$WORK/whole.log") &
  cpid=$! looks=0 partial=0
  for _ in $(seq 1 5000); do
    kill -0 $cpid 2>/dev/null || break
    if out=$("$CAFFEGRID" inspect "$WORK/whole_db" 2>&1); then
      looks=$((looks + 1))
      grep -q "^records: 60000$" <<<"$out" || partial=$((partial + 1))
    fi
  done
  wait $cpid; rc=$?
  check "convert $limited (exit $rc)" test $rc -eq 0
  check "a reader never saw a partial database ($looks readable looks, $partial partial)" test $partial -eq 0
  check "no temporary folder left beside it" test -z "$(ls -d "$WORK"/whole_db.tmp.* 2>/dev/null)"
  out=$($limit; "$CAFFEGRID" inspect "$WORK/whole_db" 2>&1)
  check "inspect $limited reads all 60,000 records" grep -q "^records: 60000$" <<<"$out"
fi
report
