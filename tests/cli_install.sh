#!/usr/bin/env bash
# `make install PREFIX=DIR` installs the CLI, libcaffegrid.{a,so}, the public headers
# with the umbrella caffegrid/caffegrid.h, and lib/pkgconfig/caffegrid.pc; a program
# outside the tree (tests/install/classify.c) built with nothing but
# `pkg-config --cflags --libs caffegrid` classifies MNIST t10k images with BVLC's LeNet
# and Caffe-trained weights, and says the labels the idx file gives. The shared library
# exports the functions the public headers declare and nothing else.
source "$(dirname "$0")/lib_cli.sh"
ROOT=$(cd "$TESTS_DIR/.." && pwd)
build=${BUILD:-build}
san=0; [ "$build" = build-san ] && san=1
prefix=$WORK/prefix # (pkg-config splits flags at spaces, so no space here)
out=$(make -s -C "$ROOT" install BUILD="$build" SAN=$san PREFIX="$prefix" 2>&1); rc=$?
check "make install succeeds: $out" test $rc -eq 0
for f in bin/caffegrid lib/libcaffegrid.a lib/libcaffegrid.so lib/pkgconfig/caffegrid.pc include/caffegrid/caffegrid.h \
  include/caffegrid/net.h include/caffegrid/blob.h include/caffegrid/error.h; do
  check "installed $f" test -s "$prefix/$f"
done
# the shared library exports exactly the functions the public headers declare (no internals, no caffe__*)
nm -D --defined-only "$prefix/lib/libcaffegrid.so" | awk '$2 ~ /^[TtWiD]$/ {print $3}' | sort -u > "$WORK/exported"
# (environment.h is header-only: its static inline cg_env_* functions are the caller's own; typedef lines
# name types such as cg_solver_action as the return type of a function pointer, not functions)
ls "$prefix"/include/caffegrid/*.h | grep -v '/environment.h$' | xargs cat | grep -v '^typedef' |
  grep -ohE '\bcg_[a-z0-9_]+\s*\(' | sed 's/\s*($//' | sort -u > "$WORK/declared"
check "libcaffegrid.so exports $(wc -l < "$WORK/exported") functions, exactly the $(wc -l < "$WORK/declared") declared in include/caffegrid: $(diff "$WORK/declared" "$WORK/exported" | grep '^[<>]' | head -5 | tr '\n' ' ')" \
  cmp -s "$WORK/declared" "$WORK/exported"
check "the installed CLI runs" bash -c "'$prefix/bin/caffegrid' help >/dev/null 2>&1"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
check "pkg-config knows caffegrid" pkg-config --exists caffegrid
flags=$(pkg-config --cflags --libs caffegrid)
sanflags=(); [ $san = 1 ] && sanflags=(-fsanitize=address,undefined)
# shellcheck disable=SC2086 # pkg-config's words are separate flags
cc_out=$(cd "$WORK" && cc -std=c11 -Wall -Wextra -Werror "${sanflags[@]}" "$TESTS_DIR/install/classify.c" -o classify $flags 2>&1)
check "a program builds with pkg-config's flags alone: $cc_out" test -x "$WORK/classify"

net=$SHARED_DATA/caffe_ref/bvlc_mnist_prototxt/lenet.prototxt
weights=$SHARED_DATA/caffe_ref/lenet_nandahkrishna/lenet_iter_10000.caffemodel
# the first 5 test images as raw 28x28 bytes, and their labels, from the idx files
python3 - "$SHARED_DATA/mnist" "$WORK" <<'PY'
import gzip, sys
src, out = sys.argv[1], sys.argv[2]
images = gzip.open(f"{src}/t10k-images-idx3-ubyte.gz").read()[16:]
labels = gzip.open(f"{src}/t10k-labels-idx1-ubyte.gz").read()[8:]
for i in range(5):
    open(f"{out}/image{i}.raw", "wb").write(images[i * 784:(i + 1) * 784])
    open(f"{out}/label{i}", "w").write(f"{labels[i]}\n")
PY
for i in 0 1 2 3 4; do
  got=$("$WORK/classify" "$net" "$weights" "$WORK/image$i.raw" 2>&1)
  check "image $i: '$got' is its label $(cat "$WORK/label$i")" test "$got" = "class $(cat "$WORK/label$i")"
done
expect_error "a bad prototxt is reported by the program" "no_such.prototxt" "$WORK/classify" "$WORK/no_such.prototxt" "$weights" "$WORK/image0.raw"
report
