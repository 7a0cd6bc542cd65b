/* Fuzz target: Datum records (raw bytes, float_data, encoded images) through the
 * DataTransformer: cg_transform_load then cg_transform_apply, under crop, mirror,
 * mean values, colour forcing and resizing picked by the first two bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "data/transform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t a = data[0], b = data[1];
  data += 2, size -= 2;
  cg_transform t = {.scale = (a & 1) ? 0.00390625f : 1.0f, .mirror = (a >> 1) & 1, .train = (a >> 2) & 1};
  t.crop_size = (a >> 3) & 3 ? ((a >> 3) & 3) * 3 : 0;
  t.color = (cg_color_mode)((a >> 5) % 3);
  if (b & 1) t.resize_h = 1 + ((b >> 1) & 7), t.resize_w = 1 + ((b >> 4) & 7);
  t.num_mean_values = (b >> 7) ? 3 : 0;
  t.mean_values[0] = 104, t.mean_values[1] = 117, t.mean_values[2] = 123;
  cg_record rec = {.kind = CG_RECORD_DATUM, .id = "fuzz", .bytes = data, .num_bytes = size};
  cg_pixels px = {0};
  if (cg_transform_load(&t, &rec, &px, "fuzz") == 0) {
    int oh, ow;
    cg_transform_out_shape(&t, px.channels, px.height, px.width, &oh, &ow);
    size_t n = (size_t)px.channels * (size_t)oh * (size_t)ow;
    if (n > 0 && n <= ((size_t)1 << 26)) {
      float *out = malloc(n * sizeof(float));
      cg_rng rng;
      cg_rng_seed(&rng, 7);
      if (out) (void)cg_transform_apply(&t, &px, out, &rng, "fuzz");
      free(out);
    }
  }
  cg_pixels_free(&px);
  return 0;
}
