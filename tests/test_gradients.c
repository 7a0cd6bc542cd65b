/* Gradient checks over the layer table: every registered layer type must have
 * at least one case here (or be listed as having no gradient), so a new layer
 * is checked by being registered. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/layer.h"
#include "gradient_check.h"

/* Layers with nothing to differentiate: sources and metrics. */
static const char *const no_gradient[] = {
    "Input", "DummyData", "Data", "MemoryData", "Accuracy", "ArgMax", "ImageData", "HDF5Data", "HDF5Output",
};

static const grad_case cases[] = {
    /* neuron and structural layers */
    /* CASES-A */
    /* vision layers, losses */
    /* CASES-B */
    /* Convolution: plain, pad/stride, dilation, group without bias, _h/_w, 1x1, 1-d, two bottoms sharing weights */
    {.layer = "type: \"Convolution\" convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"2 3 6 5"}},
    {.layer = "type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 2 7 6"}},
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
    /* InnerProduct: plain, axis 2, transpose, no bias with a negative axis */
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 4 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"2 3 2 2"}},
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 3 axis: 2 weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"2 3 4"}},
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 3 transpose: true weight_filler { type: \"gaussian\" std: 0.3 } bias_filler { type: \"gaussian\" std: 0.3 } }", .bottoms = {"3 5"}},
    {.layer = "type: \"InnerProduct\" inner_product_param { num_output: 2 axis: -1 bias_term: false "
              "weight_filler { type: \"gaussian\" std: 0.3 } }",
     .bottoms = {"2 3 4"}},
    /* LRN: across channels (default and non-0.75 beta), within channel */
    {.layer = "type: \"LRN\"", .bottoms = {"2 7 3 3"}, .threshold = 2e-3f},
    {.layer = "type: \"LRN\" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2 }", .bottoms = {"2 4 2 3"}},
    {.layer = "type: \"LRN\" lrn_param { local_size: 3 alpha: 0.8 beta: 0.75 norm_region: WITHIN_CHANNEL }",
     .bottoms = {"2 2 5 4"}, .threshold = 2e-3f},
    {.layer = "type: \"LRN\" lrn_param { local_size: 5 alpha: 2 beta: 0.5 norm_region: WITHIN_CHANNEL }",
     .bottoms = {"1 2 4 4"}, .threshold = 2e-3f},
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
     .step = 2e-3f, .threshold = 2e-3f},
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
  return CHECK_REPORT();
}
