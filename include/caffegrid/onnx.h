/* ONNX export: a trained net as an ONNX model any ONNX runtime can run, computing
 * what the engine computes (docs/onnx.md lists the layer -> operator mapping). */
#ifndef CAFFEGRID_ONNX_H
#define CAFFEGRID_ONNX_H

#include <stdbool.h>

#include "caffegrid/api.h"
#include "caffegrid/net.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

enum { CG_ONNX_OPSET_MIN = 13, CG_ONNX_OPSET_MAX = 17, CG_ONNX_OPSET_DEFAULT = 13 };

typedef struct cg_onnx_options {
  int opset;        /* ONNX operator set, CG_ONNX_OPSET_MIN to _MAX (0: the default) */
  bool fixed_batch; /* the inputs' batch dimension as the net has it; else symbolic ("N") */
} cg_onnx_options;

/* What an export wrote: its graph's inputs and outputs (blob names) and size. */
typedef struct cg_onnx_report {
  int num_inputs, num_outputs;
  char **inputs, **outputs; /* malloc'd; cg_onnx_report_free */
  int num_nodes, num_initializers;
} cg_onnx_report;
void cg_onnx_report_free(cg_onnx_report *r); /* NULL is a no-op */

/* Writes `net` (built in the TEST phase, with its weights) to `path` (atomically).
 * Data layers become graph inputs named after their data blob (an Input layer's
 * every top); layers that only train or score (losses, Accuracy, Silence,
 * HDF5Output) are left out, Dropout and Split pass their input on; the graph's
 * outputs are the blobs no exported layer reads, named after them. A layer without
 * a faithful ONNX form is refused with its name and why (CG_ERR_UNSUPPORTED);
 * nothing is exported approximately. options and report may be NULL. */
int cg_net_export_onnx(const cg_net *net, const cg_onnx_options *options, const char *path, cg_onnx_report *report);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
