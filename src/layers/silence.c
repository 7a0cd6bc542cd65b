/* Silence (Caffe's SilenceLayer): consumes blobs nobody else uses, so they are not
 * reported as net outputs. No tops; its gradient is zero. */
#include <string.h>

#include "core/layer.h"

static int silence_nothing(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)l, (void)bottom, (void)top;
  return CG_OK;
}

static void silence_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)top;
  for (int i = 0; i < l->num_bottoms; i++)
    if (propagate_down[i]) memset(bottom[i]->diff, 0, bottom[i]->count * sizeof(float));
}

const cg_layer_ops cg_layer_silence = {.type = "Silence",
                                       .min_bottoms = 1,
                                       .max_bottoms = -1,
                                       .min_tops = 0,
                                       .max_tops = 0,
                                       .setup = silence_nothing,
                                       .reshape = silence_nothing,
                                       .forward = silence_nothing,
                                       .backward = silence_backward};
