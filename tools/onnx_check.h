/* `caffegrid export -check`: the exported model run by onnxruntime (from Python 3)
 * on the inputs the engine ran, and the largest difference from the engine's outputs. */
#ifndef CG_TOOLS_ONNX_CHECK_H
#define CG_TOOLS_ONNX_CHECK_H

#include "caffegrid/net.h"
#include "caffegrid/onnx.h"

/* Fills the net's input blobs with seeded random values, runs the engine forward,
 * runs `model_path` in onnxruntime on the same values and prints the largest
 * difference of each output. Non-zero (with the reason printed) when a difference
 * exceeds 1e-4 of the output's largest value or onnxruntime cannot run. */
int cg_onnx_check(cg_net *net, const char *model_path, const cg_onnx_report *report);

#endif
