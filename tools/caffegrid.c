/* caffegrid: the command-line tool. Dispatches to one command per file, with
 * Caffe's command names and flags. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/environment.h"
#include "commands.h"
#include "caffegrid/runtime.h"
#include "caffegrid/atomic_file.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"convert", cmd_convert, "convert datasets into Caffe's formats (mnist)"},
    {"compute_mean", cmd_compute_mean, "mean image of an LMDB as a .binaryproto: DB [OUT.binaryproto]"},
    {"inspect", cmd_inspect, "tell what a data file is and what it holds: PATH [-n N]"},
    {"train", cmd_train, "train a net: -solver S [-weights W] [-snapshot STATE] [-iterations N]"},
    {"features", cmd_features, "extract blobs per sample: -model NET -weights W -features B -output DIR"},
    {"plot", cmd_plot, "draw loss and accuracy from a metrics file: METRICS.jsonl -o curve.svg"},
    {"test", cmd_test, "score a model: -model NET -weights W -iterations N"},
    {"time", cmd_time, "benchmark forward/backward per layer: -model NET -iterations N"},
    {"export", cmd_export, "a trained net as ONNX: -model NET -weights W -output net.onnx [-check]"},
};

static void usage(void) {
  fprintf(stderr, "usage: caffegrid <command> [flags]\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(stderr, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
  /* Our own loops (pooling, ReLU, ...) run on the OpenMP threads oneDNN's
   * convolutions and gemms use, as many as the math has (math/threads.h). */
  if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(cg_math_threads());
  cg_env_configure_runtime(); /* CAFFEGRID_CONV, CAFFEGRID_GEMM, CAFFEGRID_DENORMALS */
  cg_atomic_file_fault_before_rename(getenv("CAFFEGRID_FAULT_BEFORE_RENAME")); /* the crash-safety test's hook */
  if (argc < 2 || strcmp(argv[1], "-help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
    usage();
    return argc < 2 ? 1 : 0;
  }
  /* CaffeOnSpark's spelling: the mode is a flag (-train -conf S -model OUT) */
  if (strcmp(argv[1], "-train") == 0) return cmd_train(argc - 2, argv + 2);
  if (strcmp(argv[1], "-test") == 0) return cmd_test(argc - 2, argv + 2);
  if (strcmp(argv[1], "-features") == 0) return cmd_features(argc - 1, argv + 1); /* "-features B" is the flag too */
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
  fprintf(stderr, "caffegrid: unknown command '%s'\n", argv[1]);
  usage();
  return 1;
}
