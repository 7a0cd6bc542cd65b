/* Image decoding with libjpeg(-turbo) and libpng behind setjmp error handlers, so
 * a broken file is an error message and never an exit() or a half image; resizing
 * and colour conversion with OpenCV's integer arithmetic, so pixels match what
 * Caffe's tools produced through OpenCV (within resize rounding). */
#include "caffegrid/image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
/* jpeglib.h needs FILE and size_t first */
#include <jerror.h>
#include <jpeglib.h>

#include "caffegrid/error.h"
#include "core/regular_file.h"

/* No header may make us allocate more than this many bytes for one image. */
#define MAX_IMAGE_BYTES ((size_t)1 << 30)

void cg_image_free(cg_image *img) {
  if (!img) return;
  free(img->data);
  memset(img, 0, sizeof *img);
}

int cg_image_reserve(cg_image *img, int channels, int height, int width) {
  if (channels <= 0 || height <= 0 || width <= 0)
    return cg_error(CG_ERR_SHAPE, "bad image shape %dx%dx%d", channels, height, width);
  size_t need = (size_t)channels * (size_t)height * (size_t)width;
  if (need > MAX_IMAGE_BYTES)
    return cg_error(CG_ERR_UNSUPPORTED, "image of %dx%dx%d is too large", channels, height, width);
  if (need > img->capacity) {
    uint8_t *grown = realloc(img->data, need);
    if (!grown) return cg_error(CG_ERR_NOMEM, "out of memory for a %dx%dx%d image", channels, height, width);
    img->data = grown;
    img->capacity = need;
  }
  img->channels = channels, img->height = height, img->width = width;
  return CG_OK;
}

/* Interleaved rows (H x W x C) into img's planes (C x H x W). */
static void planes_from_interleaved(const uint8_t *src, int c, int h, int w, uint8_t *dst) {
  size_t plane = (size_t)h * w;
  if (c == 1) {
    memcpy(dst, src, plane);
    return;
  }
  for (size_t i = 0; i < plane; i++)
    for (int k = 0; k < c; k++) dst[k * plane + i] = src[i * (size_t)c + (size_t)k];
}

static uint8_t gray_of(int b, int g, int r) {
  /* cv::cvtColor BGR2GRAY, 8-bit: 14-bit fixed-point weights */
  return (uint8_t)((b * 1868 + g * 9617 + r * 4899 + (1 << 13)) >> 14);
}

/* ---- JPEG ---- */

typedef struct jpeg_fail {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} jpeg_fail;

static void jpeg_on_error(j_common_ptr c) {
  jpeg_fail *f = (jpeg_fail *)c->err;
  c->err->format_message(c, f->message);
  longjmp(f->jump, 1);
}

/* libjpeg reports damaged data as warnings and goes on with grey filler; a
 * warning about the data is an error here. Harmless ones are let through. */
static void jpeg_on_message(j_common_ptr c, int level) {
  if (level >= 0) return; /* trace messages */
  int code = c->err->msg_code;
  if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC) {
    c->err->num_warnings++;
    return;
  }
  jpeg_on_error(c);
}

static void jpeg_quiet(j_common_ptr c) { (void)c; }

static int decode_jpeg(const uint8_t *bytes, size_t len, cg_color_mode mode, const char *name, cg_image *out) {
  struct jpeg_decompress_struct cinfo;
  jpeg_fail fail;
  uint8_t *volatile rows = NULL;
  cinfo.err = jpeg_std_error(&fail.pub);
  fail.pub.error_exit = jpeg_on_error;
  fail.pub.emit_message = jpeg_on_message;
  fail.pub.output_message = jpeg_quiet;
  fail.message[0] = '\0';
  if (setjmp(fail.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(rows);
    return cg_error(CG_ERR_CORRUPT, "%s: corrupt or truncated JPEG: %s", name, fail.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  bool gray_src = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  if (cmyk)
    cinfo.out_color_space = JCS_CMYK;
  else if (mode == CG_COLOR_GRAY || (mode == CG_COLOR_NATIVE && gray_src))
    cinfo.out_color_space = JCS_GRAYSCALE;
  else
    cinfo.out_color_space = JCS_EXT_BGR;
  if ((size_t)cinfo.image_width * cinfo.image_height * 4 > MAX_IMAGE_BYTES) {
    jpeg_destroy_decompress(&cinfo);
    return cg_error(CG_ERR_UNSUPPORTED, "%s: JPEG of %ux%u is too large", name, cinfo.image_width, cinfo.image_height);
  }
  jpeg_start_decompress(&cinfo);
  int w = (int)cinfo.output_width, h = (int)cinfo.output_height, oc = cinfo.output_components;
  size_t stride = (size_t)w * (size_t)oc;
  rows = malloc(stride * (size_t)h);
  if (!rows) {
    jpeg_destroy_decompress(&cinfo);
    return cg_error(CG_ERR_NOMEM, "%s: out of memory", name);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = rows + stride * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  bool adobe_inverted = cinfo.saw_Adobe_marker;
  jpeg_destroy_decompress(&cinfo);

  int rc;
  if (cmyk) {
    /* CMYK -> BGR as browsers do: Adobe's files store inverted ink amounts, so
     * each channel is C*K/255; without the Adobe marker (255-C)*(255-K)/255. */
    int c_out = mode == CG_COLOR_GRAY ? 1 : 3;
    rc = cg_image_reserve(out, c_out, h, w);
    if (!rc) {
      size_t plane = (size_t)h * w;
      for (size_t i = 0; i < plane; i++) {
        const uint8_t *p = rows + i * 4;
        int k = adobe_inverted ? p[3] : 255 - p[3], bgr[3];
        for (int j = 0; j < 3; j++) {
          int ink = adobe_inverted ? p[2 - j] : 255 - p[2 - j]; /* B from Y, G from M, R from C */
          bgr[j] = (ink * k + 127) / 255;
        }
        if (c_out == 1) {
          out->data[i] = gray_of(bgr[0], bgr[1], bgr[2]);
        } else {
          for (int j = 0; j < 3; j++) out->data[(size_t)j * plane + i] = (uint8_t)bgr[j];
        }
      }
    }
  } else {
    rc = cg_image_reserve(out, oc, h, w);
    if (!rc) planes_from_interleaved(rows, oc, h, w, out->data);
  }
  free(rows);
  return rc;
}

/* ---- PNG ---- */

typedef struct png_reader {
  const uint8_t *data;
  size_t len, pos;
  char message[256];
} png_reader;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_reader *r = png_get_error_ptr(png);
  snprintf(r->message, sizeof r->message, "%s", msg);
  png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_read_bytes(png_structp png, png_bytep dst, png_size_t n) {
  png_reader *r = png_get_io_ptr(png);
  if (n > r->len - r->pos) png_error(png, "file is truncated");
  memcpy(dst, r->data + r->pos, n);
  r->pos += n;
}

static int decode_png(const uint8_t *bytes, size_t len, cg_color_mode mode, const char *name, cg_image *out) {
  png_reader reader = {.data = bytes, .len = len};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return cg_error(CG_ERR_NOMEM, "%s: out of memory", name);
  }
  uint8_t *volatile pixels = NULL;
  png_bytep *volatile row_ptrs = NULL;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(row_ptrs);
    return cg_error(CG_ERR_CORRUPT, "%s: corrupt or truncated PNG: %s", name, reader.message);
  }
  png_set_read_fn(png, &reader, png_read_bytes);
  /* libpng allocates what a text, ICC or palette-histogram chunk's length field says
   * (2 GB for a 150-byte file) before reading it. We use none of them: skipped chunks
   * are read through a small buffer, so a length past the end is "file is truncated". */
  static const png_byte unused_chunks[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0pCAL\0sCAL\0hIST\0";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, unused_chunks, (int)(sizeof unused_chunks / 5));
  png_set_chunk_malloc_max(png, len + 8000000); /* other chunks; 8 MB (libpng's usual cap) on top */
  png_read_info(png, info);
  png_uint_32 w, h;
  int depth, ctype;
  png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
  if ((size_t)w * h * 4 > MAX_IMAGE_BYTES) png_error(png, "image too large");
  bool gray_src = !(ctype & PNG_COLOR_MASK_COLOR);
  if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  if ((ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
  bool gray_out = mode == CG_COLOR_GRAY || (mode == CG_COLOR_NATIVE && gray_src);
  if (gray_src && !gray_out) png_set_gray_to_rgb(png);
  if (!gray_src && gray_out) png_set_rgb_to_gray_fixed(png, 1, 29900, 58700);
  if (!gray_out) png_set_bgr(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int channels = png_get_channels(png, info);
  size_t stride = png_get_rowbytes(png, info);
  if (channels != (gray_out ? 1 : 3) || stride != (size_t)w * (size_t)channels)
    png_error(png, "unexpected pixel layout after conversion");
  pixels = malloc(stride * h);
  row_ptrs = malloc(sizeof(png_bytep) * h);
  if (!pixels || !row_ptrs) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < h; y++) row_ptrs[y] = pixels + stride * y;
  png_read_image(png, row_ptrs);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  int rc = cg_image_reserve(out, channels, (int)h, (int)w);
  if (!rc) planes_from_interleaved(pixels, channels, (int)h, (int)w, out->data);
  free(pixels);
  free(row_ptrs);
  return rc;
}

int cg_image_decode(const uint8_t *bytes, size_t len, cg_color_mode mode, const char *name, cg_image *out) {
  if (len == 0) return cg_error(CG_ERR_CORRUPT, "%s: the image is empty (0 bytes)", name);
  if (len >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
    return decode_jpeg(bytes, len, mode, name, out);
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (len >= 8 && memcmp(bytes, png_sig, 8) == 0) return decode_png(bytes, len, mode, name, out);
  return cg_error(CG_ERR_UNSUPPORTED, "%s: not a JPEG or PNG image (%zu bytes starting %02x %02x)", name, len, bytes[0],
                  len > 1 ? bytes[1] : 0);
}

int cg_read_file(const char *path, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  FILE *f;
  const char *kind;
  int err = cg_open_regular_file(path, &f, &kind);
  if (err < 0) return cg_error(CG_ERR_INVALID, "'%s' is %s, not a file to read", path, kind);
  if (err) return cg_error(CG_ERR_IO, "cannot open '%s': %s", path, strerror(err));
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(f);
      return cg_error(CG_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    uint8_t *grown = realloc(buf, cap * 2);
    if (!grown) free(buf);
    buf = grown;
    cap *= 2;
  }
  err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return cg_error(CG_ERR_IO, "cannot read '%s'", path);
  }
  *out = buf;
  *len = n;
  return CG_OK;
}

int cg_image_read_file(const char *path, cg_color_mode mode, cg_image *out) {
  uint8_t *bytes;
  size_t len;
  int rc = cg_read_file(path, &bytes, &len);
  if (rc) return rc;
  char *name = malloc(strlen(path) + 3);
  if (!name) {
    free(bytes);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  sprintf(name, "'%s'", path);
  rc = cg_image_decode(bytes, len, mode, name, out);
  free(name);
  free(bytes);
  return rc;
}

int cg_image_convert(cg_image *img, cg_color_mode mode) {
  size_t plane = (size_t)img->height * img->width;
  if (mode == CG_COLOR_GRAY && img->channels == 3) {
    const uint8_t *b = img->data, *g = b + plane, *r = g + plane;
    for (size_t i = 0; i < plane; i++) img->data[i] = gray_of(b[i], g[i], r[i]);
    img->channels = 1;
  } else if (mode == CG_COLOR_BGR && img->channels == 1) {
    int rc = cg_image_reserve(img, 3, img->height, img->width);
    if (rc) return rc;
    memcpy(img->data + plane, img->data, plane);
    memcpy(img->data + 2 * plane, img->data, plane);
  } else if (mode != CG_COLOR_NATIVE && img->channels != 1 && img->channels != 3) {
    return cg_error(CG_ERR_UNSUPPORTED, "cannot convert %d channels to %s", img->channels,
                    mode == CG_COLOR_GRAY ? "grey" : "colour");
  }
  return CG_OK;
}

/* ---- resize ---- */

enum { COEF_BITS = 11, COEF_SCALE = 1 << COEF_BITS };

/* OpenCV's INTER_LINEAR tables: source index and two 11-bit weights per output index. */
static void linear_table(int src, int dst, int *ofs, short *wts) {
  double scale = (double)src / dst;
  for (int d = 0; d < dst; d++) {
    float f = (float)((d + 0.5) * scale - 0.5);
    int s = (int)floorf(f);
    f -= (float)s;
    if (s < 0) f = 0, s = 0;
    if (s >= src - 1) f = 0, s = src - 1;
    ofs[d] = s;
    wts[2 * d] = (short)lrintf((1.f - f) * COEF_SCALE);
    wts[2 * d + 1] = (short)lrintf(f * COEF_SCALE);
  }
}

/* The vertical blend as OpenCV's SSE2 path computes it: 16-bit high products of
 * (row >> 4) and the weights, then a rounding shift by 2. */
static uint8_t blend_rows(int a, int b, short wa, short wb) {
  int x = (((a >> 4) * wa) >> 16) + (((b >> 4) * wb) >> 16);
  x = (x + 2) >> 2;
  return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
}

int cg_image_resize(const cg_image *src, int height, int width, cg_image *dst) {
  if (height <= 0 || width <= 0) return cg_error(CG_ERR_INVALID, "resize to %dx%d", height, width);
  int c = src->channels, sh = src->height, sw = src->width;
  int rc = cg_image_reserve(dst, c, height, width);
  if (rc) return rc;
  if (sh == height && sw == width) {
    memcpy(dst->data, src->data, (size_t)c * sh * sw);
    return CG_OK;
  }
  if (sh == 2 * height && sw == 2 * width) { /* cv::resize switches to INTER_AREA here */
    for (int k = 0; k < c; k++) {
      const uint8_t *s = src->data + (size_t)k * sh * sw;
      uint8_t *d = dst->data + (size_t)k * height * width;
      for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
          const uint8_t *p = s + (size_t)(2 * y) * sw + 2 * x;
          d[(size_t)y * width + x] = (uint8_t)((p[0] + p[1] + p[sw] + p[sw + 1] + 2) >> 2);
        }
    }
    return CG_OK;
  }
  int *xofs = malloc(sizeof(int) * (size_t)width), *yofs = malloc(sizeof(int) * (size_t)height);
  short *xw = malloc(sizeof(short) * 2 * (size_t)width), *yw = malloc(sizeof(short) * 2 * (size_t)height);
  int *rows = malloc(sizeof(int) * 2 * (size_t)width);
  if (!xofs || !yofs || !xw || !yw || !rows) {
    free(xofs), free(yofs), free(xw), free(yw), free(rows);
    return cg_error(CG_ERR_NOMEM, "out of memory resizing to %dx%d", height, width);
  }
  linear_table(sw, width, xofs, xw);
  linear_table(sh, height, yofs, yw);
  for (int k = 0; k < c; k++) {
    const uint8_t *s = src->data + (size_t)k * sh * sw;
    uint8_t *d = dst->data + (size_t)k * height * width;
    for (int y = 0; y < height; y++) {
      int sy[2] = {yofs[y], yofs[y] + 1 < sh ? yofs[y] + 1 : sh - 1};
      for (int r = 0; r < 2; r++) { /* horizontal pass of the two source rows */
        const uint8_t *row = s + (size_t)sy[r] * sw;
        int *h = rows + (size_t)r * width;
        for (int x = 0; x < width; x++) {
          int sx = xofs[x];
          h[x] = sx + 1 < sw ? row[sx] * xw[2 * x] + row[sx + 1] * xw[2 * x + 1] : row[sx] * COEF_SCALE;
        }
      }
      for (int x = 0; x < width; x++)
        d[(size_t)y * width + x] = blend_rows(rows[x], rows[width + x], yw[2 * y], yw[2 * y + 1]);
    }
  }
  free(xofs), free(yofs), free(xw), free(yw), free(rows);
  return CG_OK;
}

/* ---- encoding ---- */

static uint8_t *interleaved_from_planes(const cg_image *img) {
  size_t plane = (size_t)img->height * img->width;
  uint8_t *buf = malloc(plane * (size_t)img->channels);
  if (!buf) return NULL;
  for (size_t i = 0; i < plane; i++)
    for (int k = 0; k < img->channels; k++) buf[i * (size_t)img->channels + (size_t)k] = img->data[k * plane + i];
  return buf;
}

static int encode_jpeg(const cg_image *img, uint8_t **out, size_t *len) {
  struct jpeg_compress_struct cinfo;
  jpeg_fail fail;
  unsigned char *dest = NULL; /* libjpeg allocates and grows it through &dest */
  unsigned long mem_len = 0;
  uint8_t *volatile pixels = interleaved_from_planes(img);
  if (!pixels) return cg_error(CG_ERR_NOMEM, "out of memory encoding a JPEG");
  cinfo.err = jpeg_std_error(&fail.pub);
  fail.pub.error_exit = jpeg_on_error;
  fail.pub.output_message = jpeg_quiet;
  if (setjmp(fail.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(pixels);
    free(dest);
    return cg_error(CG_ERR_INVALID, "cannot encode a JPEG: %s", fail.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &dest, &mem_len);
  cinfo.image_width = (JDIMENSION)img->width;
  cinfo.image_height = (JDIMENSION)img->height;
  cinfo.input_components = img->channels;
  cinfo.in_color_space = img->channels == 1 ? JCS_GRAYSCALE : JCS_EXT_BGR;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 95, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  size_t stride = (size_t)img->width * (size_t)img->channels;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = pixels + stride * cinfo.next_scanline;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  free(pixels);
  *out = dest;
  *len = mem_len;
  return CG_OK;
}

typedef struct png_writer {
  uint8_t *data;
  size_t len, cap;
  char message[256];
} png_writer;

static void png_write_bytes(png_structp png, png_bytep src, png_size_t n) {
  png_writer *w = png_get_io_ptr(png);
  if (w->len + n > w->cap) {
    size_t cap = w->cap ? w->cap : 1 << 16;
    while (w->len + n > cap) cap *= 2;
    uint8_t *grown = realloc(w->data, cap);
    if (!grown) png_error(png, "out of memory");
    w->data = grown, w->cap = cap;
  }
  memcpy(w->data + w->len, src, n);
  w->len += n;
}

static void png_flush_nothing(png_structp png) { (void)png; }

static void png_write_on_error(png_structp png, png_const_charp msg) {
  png_writer *w = png_get_error_ptr(png);
  snprintf(w->message, sizeof w->message, "%s", msg);
  png_longjmp(png, 1);
}

static int encode_png(const cg_image *img, uint8_t **out, size_t *len) {
  png_writer writer = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &writer, png_write_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  uint8_t *volatile pixels = interleaved_from_planes(img);
  png_bytep *volatile row_ptrs = malloc(sizeof(png_bytep) * (size_t)img->height);
  if (!info || !pixels || !row_ptrs) {
    png_destroy_write_struct(&png, &info);
    free(pixels), free(row_ptrs);
    return cg_error(CG_ERR_NOMEM, "out of memory encoding a PNG");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(pixels), free(row_ptrs), free(writer.data);
    return cg_error(CG_ERR_INVALID, "cannot encode a PNG: %s", writer.message);
  }
  png_set_write_fn(png, &writer, png_write_bytes, png_flush_nothing);
  png_set_compression_level(png, 3);
  png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
               img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (img->channels == 3) png_set_bgr(png);
  size_t stride = (size_t)img->width * (size_t)img->channels;
  for (int y = 0; y < img->height; y++) row_ptrs[y] = pixels + stride * (size_t)y;
  png_write_image(png, row_ptrs);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(pixels), free(row_ptrs);
  *out = writer.data;
  *len = writer.len;
  return CG_OK;
}

int cg_image_encode(const cg_image *img, const char *format, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (img->channels != 1 && img->channels != 3)
    return cg_error(CG_ERR_UNSUPPORTED, "cannot encode an image of %d channels", img->channels);
  if (strcasecmp(format, "jpg") == 0 || strcasecmp(format, "jpeg") == 0) return encode_jpeg(img, out, len);
  if (strcasecmp(format, "png") == 0) return encode_png(img, out, len);
  return cg_error(CG_ERR_UNSUPPORTED, "unknown image encoding '%s' (jpg or png)", format);
}
