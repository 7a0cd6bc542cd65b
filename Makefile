# caffegrid build: `make` builds the library, the CLI and the tests into build/;
# `make test` runs every test; `make SAN=1 test` does the same under ASan+UBSan in build-san/.
# The default build runs on any x86-64-v2 CPU (Nehalem, 2008, and later): the kernels that
# need AVX2/FMA carry target attributes and are chosen at run time, as oneDNN and OpenBLAS
# choose theirs. `make NATIVE=1` tunes for this machine's CPU alone (into build-native/).
# `make WITH_MPI=0 WITH_HDF5=0` builds without Open MPI or libhdf5: MPI launches and HDF5
# files are then refused with a message saying so.
# `make install PREFIX=DIR` installs the CLI, the library, its headers and caffegrid.pc.
CC ?= gcc
SAN ?= 0
NATIVE ?= 0
WITH_MPI ?= 1
WITH_HDF5 ?= 1
PREFIX ?= /usr/local
VERSION = 0.1.0
ifeq ($(SAN),1)
  BUILD ?= build-san
  OPT = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else ifeq ($(NATIVE),1)
  BUILD ?= build-native
  OPT = -O3 -g -march=native -mtune=native
else
  BUILD ?= build
  OPT = -O3 -g -march=x86-64-v2 -mtune=generic
endif
WERROR ?=
ifeq ($(WITH_MPI),1)
  MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
  MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null)
endif
ifeq ($(WITH_HDF5),1)
  HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
  HDF5_LIBS := $(shell pkg-config --libs hdf5 2>/dev/null || echo -lhdf5_serial)
endif
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -fopenmp -fPIC -fvisibility=hidden -Iinclude \
  -DCAFFEGRID_VERSION='"$(VERSION)"'
CFLAGS_COMMON = $(CFLAGS_BASE) -Isrc -I$(BUILD)/gen $(MPI_CFLAGS) $(HDF5_CFLAGS)
CFLAGS += $(OPT) $(CFLAGS_COMMON)
# the CLI and the benchmarks are the library's users: they see its public headers only
# (bench/allreduce_bw.c also calls MPI itself)
CONSUMER_CFLAGS = $(OPT) $(CFLAGS_BASE) $(MPI_CFLAGS)
LDFLAGS += $(OPT) -fopenmp
LDLIBS_BASE = -ldnnl -lopenblas -llmdb -lprotobuf-c -ljpeg -lpng -lz -lmvec -lm -lpthread
LDLIBS = $(LDLIBS_BASE) $(MPI_LIBS) $(HDF5_LIBS)

# sources that need an optional library, and what stands in for them without it
OPTIONAL_SRC = src/comm/mpi.c src/comm/mpi_watchdog.c src/comm/mpi_absent.c src/data/hdf5_source.c src/data/hdf5_absent.c
WITH_SRC = $(if $(filter 1,$(WITH_MPI)),src/comm/mpi.c src/comm/mpi_watchdog.c,src/comm/mpi_absent.c) \
  $(if $(filter 1,$(WITH_HDF5)),src/data/hdf5_source.c,src/data/hdf5_absent.c)
# tests and benchmarks that call MPI or libhdf5 themselves
NEEDS_MPI = tests/test_mpi.c bench/allreduce_bw.c
NEEDS_HDF5 = tests/test_hdf5.c
LEFT_OUT = $(if $(filter 1,$(WITH_MPI)),,$(NEEDS_MPI)) $(if $(filter 1,$(WITH_HDF5)),,$(NEEDS_HDF5))

# Caffe's formats, and the part of ONNX's the exporter writes (proto/*.proto, protobuf-c)
GEN_PROTOS = caffe onnx
GEN_C = $(patsubst %,$(BUILD)/gen/proto/%.pb-c.c,$(GEN_PROTOS))
GEN_H = $(patsubst %,$(BUILD)/gen/proto/%.pb-c.h,$(GEN_PROTOS))
LIB_SRC = $(sort $(filter-out $(OPTIONAL_SRC),$(wildcard src/*/*.c)) $(WITH_SRC))
LIB_OBJ = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(patsubst %,$(BUILD)/obj/gen/%.pb-c.o,$(GEN_PROTOS))
TOOL_SRC = $(sort $(wildcard tools/*.c))
TOOL_OBJ = $(patsubst tools/%.c,$(BUILD)/obj/tools/%.o,$(TOOL_SRC))
TEST_SRC = $(sort $(filter-out $(LEFT_OUT),$(wildcard tests/test_*.c)))
TEST_BIN = $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_SUPPORT = $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
TEST_SUPPORT_OBJ = $(patsubst tests/%.c,$(BUILD)/obj/tests/%.o,$(TEST_SUPPORT))

REPLAY_BIN = $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard fuzz/fuzz_*.c)))
BENCH_SRC = $(sort $(filter-out $(LEFT_OUT),$(wildcard bench/*.c)))
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

$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen $<

# generated sources stay (make would delete them as intermediates and rebuild every time)
.SECONDARY: $(GEN_C) $(GEN_H) $(patsubst %,$(FUZZ_BUILD)/gen/proto/%.pb-c.c,$(GEN_PROTOS)) $(FUZZ_GEN_H)

$(BUILD)/obj/gen/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -w -c $< -o $@

$(BUILD)/obj/%.o: src/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tools/%.o: tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CONSUMER_CFLAGS) -MMD -MP -c $< -o $@

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

$(BUILD)/obj/bench/%.o: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CONSUMER_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libcaffegrid.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libcaffegrid.a $(LDLIBS)

test: all
	BUILD=$(BUILD) bash tests/run_all.sh

clean:
	rm -rf build build-san build-fuzz build-native

# libFuzzer targets (fuzz/fuzz_*.c), built with clang under ASan+UBSan into build-fuzz/
# with their own copy of the library objects and generated protobuf-c code;
# fuzz/run.sh builds and runs them (docs/fuzzing.md).
FUZZ_CC ?= clang
FUZZ_BUILD = build-fuzz
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link -std=c11 -D_GNU_SOURCE -Wall \
  -Wextra -Wno-unknown-pragmas -Wno-source-uses-openmp -Iinclude -Isrc -I$(FUZZ_BUILD)/gen $(MPI_CFLAGS) $(HDF5_CFLAGS) \
  -DCAFFEGRID_VERSION='"$(VERSION)"'
FUZZ_LIB_OBJ = $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRC)) $(patsubst %,$(FUZZ_BUILD)/obj/gen/%.pb-c.o,$(GEN_PROTOS))
FUZZ_GEN_H = $(patsubst %,$(FUZZ_BUILD)/gen/proto/%.pb-c.h,$(GEN_PROTOS))
FUZZ_BIN = $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(sort $(wildcard fuzz/fuzz_*.c)))

fuzz: $(FUZZ_BIN)

$(FUZZ_BUILD)/gen/proto/%.pb-c.c $(FUZZ_BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(FUZZ_BUILD)/gen
	protoc-c --c_out=$(FUZZ_BUILD)/gen $<

$(FUZZ_BUILD)/obj/gen/%.pb-c.o: $(FUZZ_BUILD)/gen/proto/%.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -w -c $< -o $@

$(FUZZ_BUILD)/obj/%.o: src/%.c $(FUZZ_GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/obj/fuzz/%.o: fuzz/%.c $(FUZZ_GEN_H)
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

# ---- install: the CLI, both libraries, the public headers and a pkg-config file
PUBLIC_HEADERS = $(sort $(wildcard include/caffegrid/*.h))
# caffegrid.pc is written at install time, for the PREFIX of that install
install: $(BUILD)/libcaffegrid.a $(BUILD)/libcaffegrid.so $(BUILD)/caffegrid
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/lib/pkgconfig" "$(DESTDIR)$(PREFIX)/include/caffegrid"
	install -m 755 $(BUILD)/caffegrid "$(DESTDIR)$(PREFIX)/bin/caffegrid"
	install -m 644 $(BUILD)/libcaffegrid.a "$(DESTDIR)$(PREFIX)/lib/libcaffegrid.a"
	install -m 755 $(BUILD)/libcaffegrid.so "$(DESTDIR)$(PREFIX)/lib/libcaffegrid.so"
	install -m 644 $(PUBLIC_HEADERS) "$(DESTDIR)$(PREFIX)/include/caffegrid/"
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: caffegrid' 'Description: Caffe nets trained and run in C, data-parallel over MPI and Spark' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -lcaffegrid' \
	  'Libs.private: -fopenmp $(LDLIBS)' > "$(DESTDIR)$(PREFIX)/lib/pkgconfig/caffegrid.pc"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/caffegrid" "$(DESTDIR)$(PREFIX)/lib/libcaffegrid.a" \
	  "$(DESTDIR)$(PREFIX)/lib/libcaffegrid.so" "$(DESTDIR)$(PREFIX)/lib/pkgconfig/caffegrid.pc"
	rm -rf "$(DESTDIR)$(PREFIX)/include/caffegrid"

.PHONY: all test clean install uninstall
-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*.d)
