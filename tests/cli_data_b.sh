#!/usr/bin/env bash
# Data formats through the CLI: `inspect` on every kind of file it knows (the
# "records: N" line checked), `convert seqfile` -> inspect, `convert cifar` on
# generated batches, HDF5Data/HDF5Output in a net, and bad inputs (truncated
# SequenceFile, missing .h5 in a list, datasets whose rows disagree): each a clear
# message and a non-zero exit, never a crash.
source "$(dirname "$0")/lib_cli.sh"
tests_bin=$(dirname "$CAFFEGRID")/tests
ref=$SHARED_DATA/caffe_ref
h5=$ref/hdf5_bvlc_test_data
seq=$SHARED_DATA/seqfile

# inspect_has DESCRIPTION EXPECTED_LINE PATH [FLAGS]: exit 0 and a line exactly EXPECTED_LINE
inspect_has() {
  local what=$1 line=$2; shift 2
  local out
  if ! out=$("$CAFFEGRID" inspect "$@" 2>&1); then fail "$what: exit non-zero: $out"; return; fi
  if ! grep -qxF -- "$line" <<<"$out"; then fail "$what: no line '$line' in: $out"; return; fi
  pass
}

# --- every kind of file
if have_data seqfile/bigdl/imagenet-seq-0_0.seq -- 3; then
  inspect_has "SequenceFile, record-compressed" "records: 3" "$seq/bigdl/imagenet-seq-0_0.seq"
  inspect_has "SequenceFile codec" "  compression: record, codec org.apache.hadoop.io.compress.DefaultCodec" \
    "$seq/bigdl/imagenet-seq-0_0.seq"
  inspect_has "BigDL records decoded" '  #0 key "1", value 196616 bytes: pixels 3x256x256, label 1' "$seq/bigdl/imagenet-seq-0_0.seq"
fi
inspect_has "SequenceFile, block-compressed" "records: 31" "$seq/warp10-pig/test.seq"
inspect_has "SequenceFile classes" "  key class: org.apache.hadoop.io.BytesWritable" "$seq/warp10-pig/test.seq"
inspect_has "SequenceFile, uncompressed" "records: 8" "$seq/nutchpy/crawldb_data"
inspect_has "SequenceFile keys" '  #1 key "http://nutch.apache.org/bot.html", value 29 bytes' "$seq/nutchpy/crawldb_data"
inspect_has "HDF5 file" "records: 10" "$h5/sample_data.h5"
inspect_has "HDF5 datasets" "  dataset data: float32 10x8x6x5" "$h5/sample_data.h5"
inspect_has "HDF5 gzip datasets" "  dataset label: uint8 10x1" "$h5/sample_data_2_gzip.h5"
inspect_has "HDF5 without a label" "records: 8" "$h5/solver_data.h5"
printf '%s\n%s\n' "$h5/sample_data.h5" "$h5/sample_data_2_gzip.h5" > "$WORK/h5_list.txt"
inspect_has "HDF5 list" "records: 20" "$WORK/h5_list.txt"
if have_data caffe_ref/convert_imageset_sujack1/test_lmdb -- 2; then
  inspect_has "LMDB directory" "records: 8" "$ref/convert_imageset_sujack1/test_lmdb"
  inspect_has "LMDB records" "  #0 00000000_c7.jpg: Datum 3x256x256 bytes, label 0" "$ref/convert_imageset_sujack1/test_lmdb" -n 1
fi
if have_data caffe_ref/lmdb_jnulzl_32x32/test_lmdb/data.mdb; then
  inspect_has "LMDB data.mdb" "records: 380" "$ref/lmdb_jnulzl_32x32/test_lmdb/data.mdb"
fi
if have_data images/images_list.txt; then
  inspect_has "image list" "records: 26" "$SHARED_DATA/images/images_list.txt"
fi
inspect_has "caffemodel" "layers: 9, 4 with weights, 8 blobs" "$ref/lenet_nandahkrishna/lenet_iter_10000.caffemodel"
if have_data caffe_ref/lenet_yuvval/lenet_iter_10000.solverstate; then
  inspect_has "solverstate" "  iter: 10000" "$ref/lenet_yuvval/lenet_iter_10000.solverstate"
fi
if have_data caffe_ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto; then
  out=$("$CAFFEGRID" inspect "$ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto" 2>&1)
  check "binaryproto" grep -q "BlobProto, e.g. a mean file): 1x3x32x32 (3072 values)" <<<"$out"
fi

# --- convert seqfile, then inspect and read back
if have_data images/images_list.txt -- 15; then
  "$CAFFEGRID" convert seqfile "$SHARED_DATA/images/" "$SHARED_DATA/images/images_list.txt" "$WORK/images.seq" 2>/dev/null
  check "convert seqfile" test -s "$WORK/images.seq"
  inspect_has "converted SequenceFile" "records: 26" "$WORK/images.seq"
  inspect_has "converted key, label, bytes" \
    '  #0 key "bvlc/cat.jpg\t0", value 140391 bytes: image file, 140391 bytes, label 0' "$WORK/images.seq" -n 1
  "$CAFFEGRID" convert seqfile "$SHARED_DATA/images/" "$SHARED_DATA/images/images_list.txt" "$WORK/images_block.seq" \
    --compression=block 2>/dev/null
  inspect_has "block-compressed conversion" "  compression: block, codec org.apache.hadoop.io.compress.DefaultCodec" \
    "$WORK/images_block.seq"
  inspect_has "block-compressed records" "records: 26" "$WORK/images_block.seq"
  out=$("$CAFFEGRID" inspect "$WORK/images_block.seq" -n 26 2>&1)
  check "every converted record is an image with its label" test "$(grep -c ': image file, .* bytes, label [0-9]*$' <<<"$out")" -eq 26
  check "last record's key" grep -qF 'key "jpeg_edge/restarts.jpg' <<<"$out"
  # a Data layer reads a SequenceFile (found by what it holds, as `inspect` finds it): the
  # same centre crops, in the same order, as from an LMDB of the same encoded files (the
  # list's 16 photos; the icons after them are smaller than the crop)
  head -16 "$SHARED_DATA/images/images_list.txt" > "$WORK/photos.txt"
  "$CAFFEGRID" convert seqfile "$SHARED_DATA/images/" "$WORK/photos.txt" "$WORK/photos.seq" 2>/dev/null
  "$CAFFEGRID" convert imageset "$SHARED_DATA/images/" "$WORK/photos.txt" "$WORK/photos_lmdb" --encoded 2>/dev/null
  for src in photos.seq photos_lmdb photos.txt; do
    cat > "$WORK/data_$src.prototxt" <<EOF
layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { crop_size: 48 } data_param { source: "$WORK/$src" batch_size: 2 force_encoded_color: true } }
EOF
  done
  for src in photos.seq photos_lmdb; do
    "$CAFFEGRID" features -model "$WORK/data_$src.prototxt" -features data -label label -output "$WORK/crops_$src" \
      > "$WORK/crops_$src.log" 2>&1
  done
  check "Data layer over a SequenceFile: the LMDB's 16 crops and labels" python3 - "$WORK/crops_photos.seq" \
    "$WORK/crops_photos_lmdb" <<'PY'
import json, os, sys
def rows(d):
    return [json.loads(l) for f in sorted(os.listdir(d)) if f.startswith("part-") for l in open(os.path.join(d, f))]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert len(a) == len(b) == 16, (len(a), len(b))
for x, y in zip(a, b):
    assert len(x["data"]) == 3 * 48 * 48 and x["data"] == y["data"] and x["label"] == y["label"], (x["SampleID"], y["SampleID"])
assert len({tuple(x["data"][:500]) for x in a}) > 12  # the photos' crops, not one repeated
assert [x["label"] for x in a] == [0, 0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7]
PY
  # a FIFO in a list is refused at once (opening one waits for a writer: convert hung)
  mkdir -p "$WORK/fifo" && cp "$SHARED_DATA/images/bvlc/cat.jpg" "$WORK/fifo/" && mkfifo "$WORK/fifo/pipe.jpg"
  printf 'cat.jpg 0\npipe.jpg 1\n' > "$WORK/fifo/list.txt"
  expect_error "a FIFO in an image list is refused, not waited on" "list.txt:2: image '$WORK/fifo/pipe.jpg' is a FIFO" \
    timeout 20 "$CAFFEGRID" convert imageset "$WORK/fifo/" "$WORK/fifo/list.txt" "$WORK/fifo_db"
  expect_error "Data layer over an image list points to ImageData" "an image list is read by an ImageData layer" \
    "$CAFFEGRID" features -model "$WORK/data_photos.txt.prototxt" -features data -output "$WORK/crops_list"
  expect_error "convert seqfile refuses to overwrite" "already exists" \
    "$CAFFEGRID" convert seqfile "$SHARED_DATA/images/" "$SHARED_DATA/images/images_list.txt" "$WORK/images.seq"
  printf 'bvlc/cat.jpg 0\nbvlc/no_such.jpg 1\n' > "$WORK/missing_list.txt"
  expect_error "convert seqfile, missing image" "missing_list.txt:2: cannot open" \
    "$CAFFEGRID" convert seqfile "$SHARED_DATA/images/" "$WORK/missing_list.txt" "$WORK/missing.seq"
  check "failed conversion leaves no file" test ! -e "$WORK/missing.seq"
  printf 'bvlc/cat.jpg\n' > "$WORK/nolabel_list.txt"
  expect_error "convert seqfile, line without label" "nolabel_list.txt:1: expected 'path label'" \
    "$CAFFEGRID" convert seqfile "$SHARED_DATA/images/" "$WORK/nolabel_list.txt" "$WORK/nolabel.seq"
  expect_error "convert seqfile, bad compression" "expected none, record or block" \
    "$CAFFEGRID" convert seqfile "$SHARED_DATA/images/" "$WORK/nolabel_list.txt" "$WORK/x.seq" --compression=snappy
fi

# --- convert cifar on generated batches: 3 images per file, label = (file * 3 + i) % 10, pixel = its index % 251
mkdir -p "$WORK/cifar"
python3 - "$WORK/cifar" <<'EOF'
import sys
d = sys.argv[1]
names = ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]
for f, name in enumerate(names):
    with open("%s/%s" % (d, name), "wb") as out:
        for i in range(3):
            out.write(bytes([(f * 3 + i) % 10]) + bytes((k + f * 3 + i) % 251 for k in range(3072)))
EOF
"$CAFFEGRID" convert cifar "$WORK/cifar" "$WORK/cifar_out" 2>/dev/null
inspect_has "CIFAR train LMDB" "records: 15" "$WORK/cifar_out/cifar10_train_lmdb"
inspect_has "CIFAR test LMDB" "records: 3" "$WORK/cifar_out/cifar10_test_lmdb"
inspect_has "CIFAR train keys and labels" "  #14 00014: Datum 3x32x32 bytes, label 4" "$WORK/cifar_out/cifar10_train_lmdb" -n 15
inspect_has "CIFAR test keys and labels" "  #2 00002: Datum 3x32x32 bytes, label 7" "$WORK/cifar_out/cifar10_test_lmdb"
# the pixels: the mean image of the test set is the mean of (k + 15 + i) % 251 over i = 0..2
"$CAFFEGRID" compute_mean "$WORK/cifar_out/cifar10_test_lmdb" "$WORK/cifar_mean.binaryproto" >/dev/null 2>&1
out=$("$CAFFEGRID" inspect "$WORK/cifar_mean.binaryproto" 2>&1)
expected_mean=$(python3 -c 'print("%g" % (sum((k + 15 + i) % 251 for k in range(3072) for i in range(3)) / 9216))')
check "CIFAR pixels kept as stored (mean $expected_mean)" grep -q "mean value $expected_mean\$" <<<"$out"
expect_error "convert cifar refuses to overwrite" "already exists" "$CAFFEGRID" convert cifar "$WORK/cifar" "$WORK/cifar_out"
head -c 5000 "$WORK/cifar/test_batch.bin" > "$WORK/cifar/short.bin" && mv "$WORK/cifar/short.bin" "$WORK/cifar/test_batch.bin"
expect_error "convert cifar, short batch" "is not a CIFAR-10 binary batch" "$CAFFEGRID" convert cifar "$WORK/cifar" "$WORK/cifar_out2"
rm "$WORK/cifar/data_batch_3.bin"
expect_error "convert cifar, missing batch" "data_batch_3.bin" "$CAFFEGRID" convert cifar "$WORK/cifar" "$WORK/cifar_out2"
check "failed cifar conversion leaves nothing" test ! -e "$WORK/cifar_out2/cifar10_train_lmdb"

# --- HDF5Data and HDF5Output in a net, through `caffegrid test`
cat > "$WORK/h5_net.prototxt" <<EOF
name: "h5"
layer { name: "d" type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "$WORK/h5_list.txt" batch_size: 5 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 1 } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "out" type: "HDF5Output" bottom: "data" bottom: "label" hdf5_output_param { file_name: "$WORK/h5_out.h5" } }
EOF
out=$("$CAFFEGRID" test -model "$WORK/h5_net.prototxt" -iterations 4 2>&1)
# the inner product starts at zero, so each batch's loss is sum(label^2) / 10: labels 1-5 then 6-10
check "HDF5Data batch 0 in a net" grep -q "Batch 0, loss = 5.5$" <<<"$out"
check "HDF5Data batch 1 in a net" grep -q "Batch 1, loss = 33$" <<<"$out"
inspect_has "HDF5Output wrote every batch" "records: 20" "$WORK/h5_out.h5"
inspect_has "HDF5Output datasets" "  dataset data: float32 20x8x6x5" "$WORK/h5_out.h5"

# --- bad inputs
if have_data seqfile/bigdl/imagenet-seq-0_0.seq; then
  head -c 200000 "$seq/bigdl/imagenet-seq-0_0.seq" > "$WORK/truncated.seq"
  expect_error "truncated SequenceFile" "SequenceFile '$WORK/truncated.seq' is truncated at byte 183007: the record needs 93574 bytes" \
    "$CAFFEGRID" inspect "$WORK/truncated.seq"
fi
head -c 60 "$seq/warp10-pig/test.seq" > "$WORK/truncated_header.seq"
expect_error "SequenceFile cut in its header" "truncated_header.seq' is truncated at byte" \
  "$CAFFEGRID" inspect "$WORK/truncated_header.seq"
printf '%s\n%s\n' "$h5/sample_data.h5" "$WORK/not_there.h5" > "$WORK/missing_h5.txt"
expect_error "missing .h5 in a list (inspect)" "cannot open HDF5 file '$WORK/not_there.h5': No such file or directory" \
  "$CAFFEGRID" inspect "$WORK/missing_h5.txt"
sed "s#$WORK/h5_list.txt#$WORK/missing_h5.txt#" "$WORK/h5_net.prototxt" > "$WORK/missing_net.prototxt"
expect_error "missing .h5 in a list (net)" "not_there.h5" "$CAFFEGRID" test -model "$WORK/missing_net.prototxt" -iterations 1
"$tests_bin/test_hdf5" --write-mismatch "$WORK/mismatch.h5"
printf '%s\n' "$WORK/mismatch.h5" > "$WORK/mismatch_list.txt"
expect_error "dataset rows disagree (inspect)" "dataset 'label' has 9 rows but dataset 'data' has 10" \
  "$CAFFEGRID" inspect "$WORK/mismatch.h5"
sed "s#$WORK/h5_list.txt#$WORK/mismatch_list.txt#" "$WORK/h5_net.prototxt" > "$WORK/mismatch_net.prototxt"
expect_error "dataset rows disagree (net)" "HDF5 file '$WORK/mismatch.h5': dataset 'label' has 9 rows but dataset 'data' has 10" \
  "$CAFFEGRID" test -model "$WORK/mismatch_net.prototxt" -iterations 1
expect_error "inspect, missing path" "no_such_file" "$CAFFEGRID" inspect "$WORK/no_such_file"
mkdir -p "$WORK/empty_dir"
expect_error "inspect, plain directory" "neither an LMDB" "$CAFFEGRID" inspect "$WORK/empty_dir"
expect_error "inspect, a prototxt" "not a known kind of data file" "$CAFFEGRID" inspect "$ref/lenet_nandahkrishna/lenet_train_test.prototxt"
head -c 3000 /dev/zero > "$WORK/zeros.bin"
expect_error "inspect, unknown binary" "not a known kind of data file" "$CAFFEGRID" inspect "$WORK/zeros.bin"
report
