/* Gradient checks over the layer table: every registered layer type must have
 * at least one case here (or be listed as having no gradient), so a new layer
 * is checked by being registered. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/layer.h"
#include "gradient_check.h"
#include "caffegrid/runtime.h"
#include "math/math.h"

/* Layers with nothing to differentiate: sources and metrics. */
static const char *const no_gradient[] = {
    "Input", "DummyData", "Data", "MemoryData", "Accuracy", "ArgMax", "ImageData", "HDF5Data", "HDF5Output",
    "Threshold", /* a step: Caffe defines no gradient */
    "Silence",   /* no tops to differentiate; its zero gradient is checked in test_layers_a */
};

static const grad_case cases[] = {
    /* neuron and structural layers */
    /* CASES-A */
    /* ReLU, leaky ReLU, PReLU (per channel, shared), ELU: inputs near the kink at 0 skipped */
    {.layer = "type: \"ReLU\"", .bottoms = {"2 3 4 5"}, .check_kink = true, .kink_range = 0.02f},
    {.layer = "type: \"ReLU\" relu_param { negative_slope: 0.1 }", .bottoms = {"2 3 4 5"}, .check_kink = true,
     .kink_range = 0.02f},
    {.layer = "type: \"PReLU\" prelu_param { filler { type: \"gaussian\" std: 0.5 } }", .bottoms = {"2 3 4 5"},
     .check_kink = true, .kink_range = 0.02f},
    {.layer = "type: \"PReLU\"", .bottoms = {"2 3 4"}, .check_kink = true, .kink_range = 0.02f},
    {.layer = "type: \"PReLU\" prelu_param { channel_shared: true }", .bottoms = {"2 3 4 5"}, .check_kink = true,
     .kink_range = 0.02f},
    {.layer = "type: \"ELU\"", .bottoms = {"2 3 4 5"}, .check_kink = true, .kink_range = 0.02f},
    {.layer = "type: \"ELU\" elu_param { alpha: 0.5 }", .bottoms = {"2 3 4 5"}, .check_kink = true,
     .kink_range = 0.02f},
    {.layer = "type: \"Sigmoid\"", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"TanH\"", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"AbsVal\"", .bottoms = {"2 3 4 5"}, .check_kink = true, .kink_range = 0.02f},
    /* Power: each of Caffe's branches (power 2, shift 0, general, power 1, constant) */
    {.layer = "type: \"Power\" power_param { power: 2 scale: 0.5 shift: 1 }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Power\" power_param { power: 3 scale: 1.5 }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Power\" power_param { power: 0.37 scale: 0.83 shift: 1.5 }", .bottoms = {"2 3 4 5:positive"}},
    {.layer = "type: \"Power\" power_param { power: -1.5 scale: 2 shift: 1.5 }", .bottoms = {"2 3 4 5:positive"}},
    {.layer = "type: \"Power\" power_param { power: 1 scale: 2 shift: 1 }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Power\" power_param { power: 0 scale: 2 shift: 1 }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Exp\"", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Exp\" exp_param { base: 2 scale: 0.5 shift: 1 }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Log\"", .bottoms = {"2 3 4 5:positive"}, .step = 1e-3f},
    {.layer = "type: \"Log\" log_param { base: 2 scale: 0.5 shift: 1 }", .bottoms = {"2 3 4 5:positive"}},
    {.layer = "type: \"BNLL\"", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Swish\"", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Swish\" swish_param { beta: 1.5 }", .bottoms = {"2 3 4 5"}},
    /* Dropout: the mask repeats because the checker rewinds the layer's RNG */
    {.layer = "type: \"Dropout\" dropout_param { dropout_ratio: 0.3 }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Dropout\"", .bottoms = {"2 3 4 5"}, .phase = 1},
    /* Eltwise: SUM (coefficients), PROD (both gradients), MAX (distinct values: no ties) */
    {.layer = "type: \"Eltwise\"", .bottoms = {"2 3 4 5", "2 3 4 5"}},
    {.layer = "type: \"Eltwise\" eltwise_param { operation: SUM coeff: 1 coeff: -0.5 coeff: 2 }",
     .bottoms = {"2 3 4 5", "2 3 4 5", "2 3 4 5"}},
    {.layer = "type: \"Eltwise\" eltwise_param { operation: PROD }", .bottoms = {"2 3 4 5", "2 3 4 5"}},
    {.layer = "type: \"Eltwise\" eltwise_param { operation: PROD }", .bottoms = {"2 3 4 5", "2 3 4 5", "2 3 4 5"}},
    {.layer = "type: \"Eltwise\" eltwise_param { operation: PROD stable_prod_grad: false }",
     .bottoms = {"2 3 4 5", "2 3 4 5", "2 3 4 5"}},
    /* "distinct" separates values within one bottom only: these shapes are ones where the
     * checker's seeded fills also put no equal values at the same place in two bottoms */
    {.layer = "type: \"Eltwise\" eltwise_param { operation: MAX }",
     .bottoms = {"2 3 4 4:distinct", "2 3 4 4:distinct"}},
    {.layer = "type: \"Eltwise\" eltwise_param { operation: MAX }",
     .bottoms = {"2 3 3 3:distinct", "2 3 3 3:distinct", "2 3 3 3:distinct"}},
    /* Concat and Slice on axis 0, 1, -1 and the legacy *_dim fields */
    {.layer = "type: \"Concat\" concat_param { axis: 0 }", .bottoms = {"2 3 4", "3 3 4"}},
    {.layer = "type: \"Concat\"", .bottoms = {"2 3 4 2", "2 2 4 2", "2 1 4 2"}},
    {.layer = "type: \"Concat\" concat_param { axis: -1 }", .bottoms = {"2 3 4", "2 3 1"}},
    {.layer = "type: \"Concat\" concat_param { concat_dim: 2 }", .bottoms = {"2 3 4 2", "2 3 1 2"}},
    {.layer = "type: \"Concat\"", .bottoms = {"2 3 4"}},
    {.layer = "type: \"Slice\" slice_param { axis: 0 slice_point: 1 slice_point: 3 }", .bottoms = {"5 3 4"},
     .num_tops = 3},
    {.layer = "type: \"Slice\"", .bottoms = {"2 6 3"}, .num_tops = 3},
    {.layer = "type: \"Slice\" slice_param { axis: -1 slice_point: 2 }", .bottoms = {"2 3 5"}, .num_tops = 2},
    {.layer = "type: \"Slice\" slice_param { slice_dim: 2 }", .bottoms = {"2 3 4 2"}, .num_tops = 2},
    {.layer = "type: \"Split\"", .bottoms = {"2 3 4"}, .num_tops = 3},
    {.layer = "type: \"Split\"", .bottoms = {"2 3 4"}},
    /* Flatten, Reshape (0 copies, -1 infers), Crop (offset for all axes, and per axis) */
    {.layer = "type: \"Flatten\"", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Flatten\" flatten_param { axis: 1 end_axis: 2 }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Reshape\" reshape_param { shape { dim: 0 dim: -1 dim: 2 } }", .bottoms = {"2 3 4"}},
    {.layer = "type: \"Reshape\" reshape_param { axis: 1 num_axes: 1 shape { dim: 3 dim: 1 } }",
     .bottoms = {"2 3 4"}},
    {.layer = "type: \"Crop\" crop_param { offset: 1 }", .bottoms = {"2 3 6 7", "2 3 4 4"}},
    {.layer = "type: \"Crop\" crop_param { axis: 1 offset: 0 offset: 1 offset: 2 }",
     .bottoms = {"2 3 6 7", "2 2 4 4"}},
    /* Bias and Scale: learned (per axis, several axes, scalar, whole blob) and from a bottom */
    {.layer = "type: \"Bias\" bias_param { filler { type: \"gaussian\" } }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Bias\" bias_param { axis: 1 num_axes: 2 filler { type: \"gaussian\" } }",
     .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Bias\" bias_param { num_axes: 0 filler { type: \"gaussian\" } }", .bottoms = {"2 3 4"}},
    {.layer = "type: \"Bias\"", .bottoms = {"2 3 4 5", "3 4"}},
    {.layer = "type: \"Bias\" bias_param { axis: 0 }", .bottoms = {"2 3 4", "2 3 4"}},
    {.layer = "type: \"Scale\" scale_param { filler { type: \"gaussian\" } }", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Scale\" scale_param { axis: 1 num_axes: 2 filler { type: \"gaussian\" } bias_term: true "
              "bias_filler { type: \"gaussian\" } }",
     .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"Scale\" scale_param { num_axes: 0 filler { type: \"gaussian\" } }", .bottoms = {"2 3 4"}},
    {.layer = "type: \"Scale\" scale_param { axis: 0 num_axes: -1 filler { type: \"gaussian\" } }",
     .bottoms = {"2 3 4"}},
    {.layer = "type: \"Scale\"", .bottoms = {"2 3 4 5", "3 4"}},
    {.layer = "type: \"Scale\" scale_param { bias_term: true bias_filler { type: \"gaussian\" } }",
     .bottoms = {"2 3 4 5", "3"}},
    {.layer = "type: \"Scale\" scale_param { axis: 0 }", .bottoms = {"2 3 4", "2 3 4"}},
    /* BatchNorm: batch statistics (TRAIN), and stored ones (which are not learned: params unchecked) */
    {.layer = "type: \"BatchNorm\"", .bottoms = {"2 3 4 5"}},
    {.layer = "type: \"BatchNorm\"", .bottoms = {"5 3"}},
    {.layer = "type: \"BatchNorm\" batch_norm_param { eps: 0.5 }", .bottoms = {"2 3 4 5"}, .phase = 1,
     .skip_params = true},
    {.layer = "type: \"BatchNorm\" batch_norm_param { use_global_stats: true eps: 1 }", .bottoms = {"2 3 4 5"},
     .skip_params = true},
    /* vision layers, losses */
    /* CASES-B */
    /* Convolution: plain, pad/stride, dilation, group without bias, _h/_w, 1x1, 1-d, two bottoms sharing weights */
    {.layer = "type: \"Convolution\" convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"2 3 6 5"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 2 7 6"}},
    /* one input channel, stride 1, no pad: the direct kernels (math/conv_single.c) for
     * blocks of 4 output channels and lone ones, whole 24-column tiles and edges, 5-tap
     * and other kernel rows; and in 1-d */
    {.layer = "type: \"Convolution\" convolution_param { num_output: 5 kernel_size: 3 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 1 6 11"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 4 kernel_size: 5 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 1 6 29"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 1 12"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 3 dilation: 2 pad: 1 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"1 2 8 7"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 4 group: 2 kernel_size: 2 bias_term: false "
              "weight_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 4 5 5"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 2 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 "
              "pad_h: 1 pad_w: 0 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"1 2 6 5"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 3 kernel_size: 1 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"2 4 3 3"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 3 9"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 2 pad: 1 stride: 1 stride: 2 "
              "dilation: 2 dilation: 1 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 2 5 5", "2 2 5 5"},
     .num_tops = 2},
    /* Deconvolution */
    {.layer = "type: \"Deconvolution\" convolution_param { num_output: 3 kernel_size: 3 stride: 2 pad: 1 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 2 4 3"}},
    {.layer = "type: \"Deconvolution\" convolution_param { num_output: 4 group: 2 kernel_size: 2 stride: 2 "
              "bias_term: false weight_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"1 4 3 3"}},
    {.layer = "type: \"Deconvolution\" convolution_param { num_output: 2 kernel_size: 3 dilation: 2 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"1 2 3 3"}},
    {.layer = "type: \"Deconvolution\" convolution_param { num_output: 3 kernel_size: 1 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"2 2 3 2"}},
    /* Pooling: MAX (distinct values, no ties), with mask top, padded, _h/_w, FLOOR, global; AVE plain/padded/global */
    {.layer = "type: \"Pooling\" pooling_param { pool: MAX kernel_size: 3 stride: 2 }", .bottoms = {"2 3 6 6:distinct"}},
    {.layer = "type: \"Pooling\" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 }",
     .bottoms = {"2 2 6 5:distinct"}},
    {.layer = "type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 stride: 2 }", .bottoms = {"1 2 4 5:distinct"},
     .num_tops = 2},
    {.layer = "type: \"Pooling\" pooling_param { pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 }",
     .bottoms = {"1 2 5 6:distinct"}},
    {.layer = "type: \"Pooling\" pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR }",
     .bottoms = {"1 2 6 6:distinct"}},
    {.layer = "type: \"Pooling\" pooling_param { pool: MAX global_pooling: true }", .bottoms = {"2 3 4 5:distinct"}},
    {.layer = "type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 2 }", .bottoms = {"2 3 7 7"}},
    {.layer = "type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }", .bottoms = {"2 2 6 6"}},
    {.layer = "type: \"Pooling\" pooling_param { pool: AVE kernel_h: 2 kernel_w: 3 pad_h: 1 pad_w: 2 stride_h: 1 "
              "stride_w: 2 }",
     .bottoms = {"1 2 4 5"}},
    {.layer = "type: \"Pooling\" pooling_param { pool: AVE global_pooling: true }", .bottoms = {"2 3 4 5"}},
    /* InnerProduct: plain (more outputs than examples: the weights on the gemm's left),
     * axis 2 (more examples), transpose, no bias with a negative axis, and without bias
     * on the weights-left path */
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 4 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"2 3 2 2"}},
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 70 bias_term: false weight_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"3 4"}},
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 3 axis: 2 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"2 3 4"}},
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 3 transpose: true weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"3 5"}},
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 2 axis: -1 bias_term: false "
              "weight_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 3 4"}},
    /* LRN: across channels (default and non-0.75 beta), within channel */
    {.layer = "type: \"LRN\"", .bottoms = {"2 7 3 3"}},
    {.layer = "type: \"LRN\" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2 }", .bottoms = {"2 4 2 3"}},
    {.layer = "type: \"LRN\" lrn_param { local_size: 3 alpha: 0.8 beta: 0.75 norm_region: WITHIN_CHANNEL }",
     .bottoms = {"2 2 5 4"}},
    {.layer = "type: \"LRN\" lrn_param { local_size: 5 alpha: 2 beta: 0.5 norm_region: WITHIN_CHANNEL }",
     .bottoms = {"1 2 4 4"}},
    /* Softmax */
    {.layer = "type: \"Softmax\"", .bottoms = {"2 5 2 3"}},
    {.layer = "type: \"Softmax\" softmax_param { axis: -1 }", .bottoms = {"2 3 4"}},
    /* SoftmaxWithLoss: default (VALID), spatial labels, ignore_label with each normalization, deprecated normalize, axis */
    {.layer = "type: \"SoftmaxWithLoss\"", .bottoms = {"4 5", "4:labels=5"}, .skip_bottoms = 2},
    {.layer = "type: \"SoftmaxWithLoss\"", .bottoms = {"2 3 2 2", "2 2 2:labels=3"}, .skip_bottoms = 2},
    {.layer = "type: \"SoftmaxWithLoss\" loss_param { ignore_label: 1 }", .bottoms = {"2 3 2 3", "2 1 2 3:labels=3"},
     .skip_bottoms = 2},
    {.layer = "type: \"SoftmaxWithLoss\" loss_param { ignore_label: 1 normalization: FULL }",
     .bottoms = {"2 3 2 3", "2 1 2 3:labels=3"}, .skip_bottoms = 2},
    {.layer = "type: \"SoftmaxWithLoss\" loss_param { ignore_label: 0 normalization: BATCH_SIZE }",
     .bottoms = {"2 3 2 3", "2 1 2 3:labels=3"}, .skip_bottoms = 2},
    {.layer = "type: \"SoftmaxWithLoss\" loss_param { ignore_label: 2 normalization: NONE }",
     .bottoms = {"2 3 2 3", "2 1 2 3:labels=3"}, .skip_bottoms = 2},
    {.layer = "type: \"SoftmaxWithLoss\" loss_param { normalize: false }", .bottoms = {"2 3 2 2", "2 2 2:labels=3"},
     .skip_bottoms = 2},
    {.layer = "type: \"SoftmaxWithLoss\" softmax_param { axis: 2 }", .bottoms = {"2 3 4", "2 3:labels=4"},
     .skip_bottoms = 2},
    {.layer = "type: \"SoftmaxWithLoss\" loss_weight: 3", .bottoms = {"3 4", "3:labels=4"}, .skip_bottoms = 2},
    /* EuclideanLoss: both bottoms get gradients */
    {.layer = "type: \"EuclideanLoss\"", .bottoms = {"3 4", "3 4"}},
    {.layer = "type: \"EuclideanLoss\"", .bottoms = {"2 3 2", "2 6"}},
    /* SigmoidCrossEntropyLoss: default (BATCH_SIZE), ignore_label with VALID, FULL */
    {.layer = "type: \"SigmoidCrossEntropyLoss\"", .bottoms = {"3 4", "3 4:binary"}, .skip_bottoms = 2},
    {.layer = "type: \"SigmoidCrossEntropyLoss\" loss_param { ignore_label: 1 normalization: VALID }",
     .bottoms = {"3 4", "3 4:binary"}, .skip_bottoms = 2},
    {.layer = "type: \"SigmoidCrossEntropyLoss\" loss_param { normalization: FULL }",
     .bottoms = {"2 3 2", "2 3 2:binary"}, .skip_bottoms = 2},
    /* HingeLoss: L1 (uniform inputs keep clear of the kinks at +-1), L2 */
    {.layer = "type: \"HingeLoss\"", .bottoms = {"4 5:uniform", "4:labels=5"}, .skip_bottoms = 2},
    {.layer = "type: \"HingeLoss\" hinge_loss_param { norm: L2 }", .bottoms = {"4 5", "4:labels=5"}, .skip_bottoms = 2},
    /* MultinomialLogisticLoss on positive "probabilities" (steep log: smaller step) */
    {.layer = "type: \"MultinomialLogisticLoss\"", .bottoms = {"3 4:positive", "3:labels=4"}, .skip_bottoms = 2,
     .step = 2e-3f},
};

static bool has_case(const char *type) {
  char want[96];
  snprintf(want, sizeof want, "type: \"%s\"", type);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (strstr(cases[i].layer, want)) return true;
  for (size_t i = 0; i < sizeof no_gradient / sizeof no_gradient[0]; i++)
    if (strcmp(no_gradient[i], type) == 0) return true;
  return false;
}

int main(void) {
  for (int i = 0; i < cg_layer_table_size; i++)
    CHECK_MSG(has_case(cg_layer_table[i]->type), "layer type '%s' has no gradient case", cg_layer_table[i]->type);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int checked = 0;
    int failures = grad_check_run(&cases[i], &checked);
    CHECK_MSG(failures == 0 && checked > 0, "%s: %d failures over %d elements", cases[i].layer, failures, checked);
  }
  /* Convolution again on im2col + gemm (the runs above used oneDNN where it takes the
   * shape), and the gemm users again on OpenBLAS's sgemm instead of oneDNN's */
  for (int pass = 0; pass < 2; pass++) {
    const char *what = pass == 0 ? "\"Convolution\"" : "Product\"";
    cg_runtime_use_fast_conv(false);
    cg_runtime_use_openblas_gemm(pass == 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      if (!strstr(cases[i].layer, what) && !(pass == 1 && strstr(cases[i].layer, "\"Convolution\""))) continue;
      int checked = 0;
      int failures = grad_check_run(&cases[i], &checked);
      CHECK_MSG(failures == 0 && checked > 0, "%s: %s: %d failures over %d elements",
                pass == 0 ? "im2col + oneDNN sgemm" : "OpenBLAS sgemm", cases[i].layer, failures, checked);
    }
  }
  cg_runtime_use_fast_conv(true);
  cg_runtime_use_openblas_gemm(false);
  return CHECK_REPORT();
}
