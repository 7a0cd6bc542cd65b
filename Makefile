# caffegrid build: `make` builds the library, the CLI and the tests into build/;
# `make test` runs every test; `make SAN=1 test` does the same under ASan+UBSan in build-san/.
CC ?= gcc
SAN ?= 0
ifeq ($(SAN),1)
  BUILD ?= build-san
  OPT = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
  BUILD ?= build
  OPT = -O3 -g -march=x86-64-v3 -mtune=native
endif
WERROR ?=
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null)
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS := $(shell pkg-config --libs hdf5 2>/dev/null || echo -lhdf5_serial)
CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -fopenmp -fPIC -Iinclude -Isrc -I$(BUILD)/gen $(MPI_CFLAGS) $(HDF5_CFLAGS)
CFLAGS += $(OPT) $(CFLAGS_COMMON)
LDFLAGS += $(OPT) -fopenmp
LDLIBS = -ldnnl -lopenblas -llmdb -lprotobuf-c -ljpeg -lpng -lz -lmvec -lm -lpthread $(MPI_LIBS) $(HDF5_LIBS)

GEN_C = $(BUILD)/gen/proto/caffe.pb-c.c
GEN_H = $(BUILD)/gen/proto/caffe.pb-c.h
LIB_SRC = $(sort $(wildcard src/*/*.c))
LIB_OBJ = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/gen/caffe.pb-c.o
TOOL_SRC = $(sort $(wildcard tools/*.c))
TOOL_OBJ = $(patsubst tools/%.c,$(BUILD)/obj/tools/%.o,$(TOOL_SRC))
TEST_SRC = $(sort $(wildcard tests/test_*.c))
TEST_BIN = $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_SUPPORT = $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
TEST_SUPPORT_OBJ = $(patsubst tests/%.c,$(BUILD)/obj/tests/%.o,$(TEST_SUPPORT))

REPLAY_BIN = $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard fuzz/fuzz_*.c)))
BENCH_SRC = $(sort $(wildcard bench/*.c))
BENCH_BIN = $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

all: $(BUILD)/libcaffegrid.a $(BUILD)/libcaffegrid.so $(BUILD)/caffegrid $(TEST_BIN) $(BENCH_BIN) $(REPLAY_BIN)

# the fuzz targets built with the ordinary compiler and fuzz/replay_main.c, to replay
# fuzz/corpus/ (seeds and crash regressions) in `make test`
$(BUILD)/obj/fuzz/%.o: fuzz/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/fuzz/fuzz_%.o $(BUILD)/obj/fuzz/replay_main.o $(BUILD)/libcaffegrid.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/obj/fuzz/replay_main.o $(BUILD)/libcaffegrid.a $(LDLIBS)

$(GEN_C) $(GEN_H): proto/caffe.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen proto/caffe.proto

$(BUILD)/obj/gen/caffe.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -w -c $< -o $@

$(BUILD)/obj/%.o: src/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tools/%.o: tools/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcaffegrid.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libcaffegrid.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/caffegrid: $(TOOL_OBJ) $(BUILD)/libcaffegrid.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libcaffegrid.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(BUILD)/libcaffegrid.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) $(BUILD)/libcaffegrid.a $(LDLIBS)

$(BUILD)/obj/bench/%.o: bench/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libcaffegrid.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libcaffegrid.a $(LDLIBS)

test: all
	BUILD=$(BUILD) bash tests/run_all.sh

clean:
	rm -rf build build-san build-fuzz

# libFuzzer targets (fuzz/fuzz_*.c), built with clang under ASan+UBSan into build-fuzz/
# with their own copy of the library objects and generated protobuf-c code;
# fuzz/run.sh builds and runs them (docs/fuzzing.md).
FUZZ_CC ?= clang
FUZZ_BUILD = build-fuzz
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link -std=c11 -D_GNU_SOURCE -Wall \
  -Wextra -Wno-unknown-pragmas -Wno-source-uses-openmp -Iinclude -Isrc -I$(FUZZ_BUILD)/gen $(MPI_CFLAGS) $(HDF5_CFLAGS)
FUZZ_LIB_OBJ = $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRC)) $(FUZZ_BUILD)/obj/gen/caffe.pb-c.o
FUZZ_BIN = $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(sort $(wildcard fuzz/fuzz_*.c)))

fuzz: $(FUZZ_BIN)

$(FUZZ_BUILD)/gen/proto/caffe.pb-c.c $(FUZZ_BUILD)/gen/proto/caffe.pb-c.h: proto/caffe.proto
	@mkdir -p $(FUZZ_BUILD)/gen
	protoc-c --c_out=$(FUZZ_BUILD)/gen proto/caffe.proto

$(FUZZ_BUILD)/obj/gen/caffe.pb-c.o: $(FUZZ_BUILD)/gen/proto/caffe.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -w -c $< -o $@

$(FUZZ_BUILD)/obj/%.o: src/%.c $(FUZZ_BUILD)/gen/proto/caffe.pb-c.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/obj/fuzz/%.o: fuzz/%.c $(FUZZ_BUILD)/gen/proto/caffe.pb-c.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libcaffegrid.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz/fuzz_%.o $(FUZZ_BUILD)/libcaffegrid.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libcaffegrid.a $(LDLIBS)

.PHONY: fuzz
-include $(wildcard $(FUZZ_BUILD)/obj/*/*.d)

# the link flags a program linking $(BUILD)/libcaffegrid.a needs (python/setup.py asks)
print-ldlibs:
	@echo $(filter -fsanitize=%,$(OPT)) $(LDLIBS)
.PHONY: print-ldlibs

.PHONY: all test clean
-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*.d)
