/* Fuzz target: JPEG and PNG decoding (cg_image_decode) in each colour mode, then
 * colour conversion and a bilinear resize of what decoded. The first byte picks the
 * mode and the resize. */
#include <stdint.h>

#include "caffegrid/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t a = data[0];
  cg_image img = {0}, resized = {0};
  if (cg_image_decode(data + 1, size - 1, (cg_color_mode)(a % 3), "fuzz", &img) == 0) {
    (void)cg_image_convert(&img, (cg_color_mode)((a >> 2) % 3));
    (void)cg_image_resize(&img, 1 + ((a >> 4) & 3) * 5, 1 + ((a >> 6) & 3) * 7, &resized);
  }
  cg_image_free(&img);
  cg_image_free(&resized);
  return 0;
}
