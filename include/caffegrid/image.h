/* JPEG and PNG files to pixels as OpenCV gives them to Caffe: 8-bit, BGR (or one
 * grey channel), stored channel-first (C x H x W, as in a Datum); bilinear resize
 * with cv::resize(INTER_LINEAR)'s fixed-point arithmetic; and the reverse
 * (encoding) for `convert imageset --encoded`. Broken files are errors naming the
 * file: nothing here exits, prints, or returns a partly decoded image. */
#ifndef CAFFEGRID_IMAGE_H
#define CAFFEGRID_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef enum {
  CG_COLOR_NATIVE, /* grey files give 1 channel, everything else 3 (OpenCV's IMREAD_ANYCOLOR) */
  CG_COLOR_BGR,    /* always 3 channels, grey replicated (IMREAD_COLOR) */
  CG_COLOR_GRAY,   /* always 1 channel (IMREAD_GRAYSCALE) */
} cg_color_mode;

/* An 8-bit image, channel-first. `data` is owned and reused by later calls (it only
 * grows); a zeroed struct is an empty image. */
typedef struct cg_image {
  int channels, height, width;
  uint8_t *data;
  size_t capacity;
} cg_image;

void cg_image_free(cg_image *img); /* frees data; the struct may be reused */
/* Sets the shape, growing data when needed. */
int cg_image_reserve(cg_image *img, int channels, int height, int width);

/* Decodes a JPEG (baseline, progressive, grey, RGB, CMYK/YCCK with Adobe's inverted
 * convention) or PNG (grey, palette, alpha dropped, 16-bit) held in bytes. `name`
 * (the file or record, quoted as the caller likes) starts every error message. A truncated or corrupt file is an
 * error, including what libjpeg only warns about (premature end of data, bad codes). */
int cg_image_decode(const uint8_t *bytes, size_t len, cg_color_mode mode, const char *name, cg_image *out);
/* Reads and decodes a file; errors name it. */
int cg_image_read_file(const char *path, cg_color_mode mode, cg_image *out);
/* Reads a whole file into *out (malloc'd, caller frees). */
int cg_read_file(const char *path, uint8_t **out, size_t *len);

/* Converts between 1 and 3 channels in place of `img` (grey = OpenCV's BGR2GRAY
 * weights 0.114 B + 0.587 G + 0.299 R, fixed point). NATIVE leaves it as it is. */
int cg_image_convert(cg_image *img, cg_color_mode mode);

/* Resizes src into dst (dst != src) to height x width with OpenCV's INTER_LINEAR:
 * pixel centres aligned, 11-bit fixed-point weights, and a 2x2 box average when
 * shrinking by exactly 2 in both directions (what cv::resize does then). */
int cg_image_resize(const cg_image *src, int height, int width, cg_image *dst);

/* Encodes img as "jpg" (quality 95, OpenCV's default) or "png"; *out is malloc'd. */
int cg_image_encode(const cg_image *img, const char *format, uint8_t **out, size_t *len);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
