/* caffegrid export: a trained net as an ONNX model, the way out of Caffe's
 * runtimes: -model NET -weights W -output net.onnx [-input_shape N,C,H,W] [-opset K]
 * [-check]. The TEST-phase net is exported (docs/onnx.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "caffegrid/net.h"
#include "caffegrid/onnx.h"
#include "commands.h"
#include "flags.h"
#include "onnx_check.h"

/* "N,C,H,W" into dims; the count, or -1 with the message printed. */
static int parse_shape(const char *text, int *dims) {
  int n = 0;
  for (const char *s = text; *s && n < CG_BLOB_MAX_AXES;) {
    char *end;
    long d = strtol(s, &end, 10);
    if (end == s || d <= 0 || d > (1L << 30) || (*end && *end != ',')) {
      fprintf(stderr, "caffegrid export: -input_shape '%s': expected positive numbers separated by commas (N,C,H,W)\n",
              text);
      return -1;
    }
    dims[n++] = (int)d;
    s = *end ? end + 1 : end;
  }
  return n;
}

/* The net's first data blob reshaped to `dims`, and the net after it. */
static int apply_shape(cg_net *net, const int *dims, int n) {
  for (int i = 0; i < cg_net_num_layers(net) && cg_net_layer_num_bottoms(net, i) == 0; i++) {
    cg_blob *b = cg_net_blob_at(net, cg_net_layer_top_index(net, i, 0));
    if (n != b->num_axes)
      return cg_error(CG_ERR_SHAPE, "-input_shape gives %d dimensions, the net's input '%s' has %d", n, b->name,
                      b->num_axes);
    int rc = cg_blob_reshape(b, n, dims);
    return rc ? rc : cg_net_reshape(net);
  }
  return cg_error(CG_ERR_INVALID, "the net has no data layer whose input -input_shape could set");
}

int cmd_export(int argc, char **argv) {
  cg_flag flags[] = {
      {"model", NULL, false, "the net prototxt (its TEST phase is exported)"},
      {"weights", NULL, false, "the trained .caffemodel"},
      {"output", NULL, false, "the ONNX file to write"},
      {"input_shape", NULL, false, "N,C,H,W: fix the input's shape (default: the net's, batch symbolic)"},
      {"opset", NULL, false, "ONNX operator set, 13 to 17 (default 13)"},
      {"check", NULL, true, "run the exported model in onnxruntime against the engine and print the difference"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  char *positional[64];
  int np = 0;
  if (argc > 64 || cg_flags_parse(argc, argv, flags, positional, &np, "export")) return 1;
  if (cg_flag_get(flags, "help")) {
    cg_flags_usage(flags, "export", "-model NET -weights W -output net.onnx [-input_shape N,C,H,W] [-opset K] [-check]");
    return 0;
  }
  const char *model = cg_flag_get(flags, "model"), *weights = cg_flag_get(flags, "weights");
  const char *output = cg_flag_get(flags, "output"), *shape = cg_flag_get(flags, "input_shape");
  long opset;
  if (!cg_flag_int(flags, "opset", CG_ONNX_OPSET_DEFAULT, &opset)) return 1;
  if (!model || !output) {
    fprintf(stderr, "caffegrid export: -model and -output are required\n");
    return 1;
  }
  int dims[CG_BLOB_MAX_AXES], num_dims = shape ? parse_shape(shape, dims) : 0;
  if (num_dims < 0) return 1;
  if (!weights) CG_LOG_WARN("no -weights: the model is exported with the fillers' initial values");
  cg_net_options opt = {.phase = 1 /* TEST */, .world_size = 1};
  cg_net *net = NULL;
  int rc = cg_net_create_from_file(model, &opt, &net);
  if (!rc && weights) rc = cg_net_load_weights(net, weights);
  if (!rc && shape) rc = apply_shape(net, dims, num_dims);
  cg_onnx_options o = {.opset = (int)opset, .fixed_batch = shape != NULL};
  cg_onnx_report report = {0};
  if (!rc) rc = cg_net_export_onnx(net, &o, output, &report);
  if (!rc) {
    printf("Wrote %s: opset %ld, %d nodes, %d initializers; outputs:", output, opset, report.num_nodes,
           report.num_initializers);
    for (int i = 0; i < report.num_outputs; i++) printf("%s %s", i ? "," : "", report.outputs[i]);
    printf("\n");
  }
  if (!rc && cg_flag_get(flags, "check")) rc = cg_onnx_check(net, output, &report);
  if (rc) fprintf(stderr, "caffegrid export: %s\n", cg_error_message());
  cg_onnx_report_free(&report);
  cg_net_free(net);
  return rc ? 1 : 0;
}
