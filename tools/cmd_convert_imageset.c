/* caffegrid convert imageset ROOT LIST OUT_DB: Caffe's convert_imageset. Each list
 * line "path label" becomes a Datum under key "%08d_<path>" (the line's number in
 * processing order); images are decoded as BGR (or grey with --gray), resized with
 * cv::resize's bilinear arithmetic when both --resize_height and --resize_width are
 * given, and stored raw (channel-first) or, with --encoded, as JPEG/PNG bytes: the
 * original file when it already has that format and needs no change, as Caffe does. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "commands.h"
#include "caffegrid/rng.h"
#include "caffegrid/image.h"
#include "caffegrid/lmdb_writer.h"
#include "caffegrid/source.h"
#include "flags.h"
#include "caffegrid/caffe_files.h"

static bool flag_true(const cg_flag *flags, const char *name) {
  const char *v = cg_flag_get(flags, name);
  return v && strcmp(v, "false") != 0 && strcmp(v, "0") != 0;
}

/* "jpg" for "dir/x.JPG"; "" when the name has no extension. */
static void extension_of(const char *path, char *out, size_t size) {
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  out[0] = '\0';
  if (!dot || (slash && dot < slash)) return;
  size_t i = 0;
  for (const char *p = dot + 1; *p && i + 1 < size; p++) out[i++] = (char)tolower((unsigned char)*p);
  out[i] = '\0';
}

static bool same_format(const char *ext, const char *enc) {
  bool ext_jpg = strcmp(ext, "jpg") == 0 || strcmp(ext, "jpeg") == 0;
  bool enc_jpg = strcasecmp(enc, "jpg") == 0 || strcasecmp(enc, "jpeg") == 0;
  return (ext_jpg && enc_jpg) || strcasecmp(ext, enc) == 0;
}

typedef struct imageset_options {
  bool gray, encoded, check_size, shuffle, skip_bad;
  const char *encode_type; /* "" = from each file's extension */
  int resize_h, resize_w;
} imageset_options;

/* One list entry into a packed Datum (*packed, malloc'd, of *len bytes; the image
 * buffers are reused). */
static int make_datum(const imageset_options *o, const cg_record *rec, const char *line_path, cg_image *img,
                      cg_image *resized, uint8_t **packed, size_t *len, int *height, int *width) {
  cg_color_mode mode = o->gray ? CG_COLOR_GRAY : CG_COLOR_BGR;
  char name[1100];
  snprintf(name, sizeof name, "'%.1024s'", rec->id);
  int rc = cg_image_decode(rec->bytes, rec->num_bytes, mode, name, img);
  if (rc) return rc;
  const cg_image *final = img;
  bool resize = o->resize_h > 0 && o->resize_w > 0 && (img->height != o->resize_h || img->width != o->resize_w);
  if (resize) {
    rc = cg_image_resize(img, o->resize_h, o->resize_w, resized);
    if (rc) return rc;
    final = resized;
  }
  *height = final->height, *width = final->width;
  cg_datum d = {.label = (int)rec->label, .has_label = true};
  uint8_t *encoded = NULL;
  if (o->encoded) {
    char ext[16], enc[16];
    extension_of(line_path, ext, sizeof ext);
    snprintf(enc, sizeof enc, "%s", o->encode_type[0] ? o->encode_type : ext);
    if (!enc[0])
      return cg_error(CG_ERR_INVALID, "'%s': cannot guess the encoding from the name; give --encode_type", rec->id);
    d.encoded = true;
    if (!resize && same_format(ext, enc)) { /* the file itself, as Caffe's ReadFileToDatum stores it */
      d.data = rec->bytes;
      d.data_len = rec->num_bytes;
    } else {
      rc = cg_image_encode(final, enc, &encoded, &d.data_len);
      if (rc) return cg_error_wrap(rc, "'%s': ", rec->id);
      d.data = encoded;
    }
  } else {
    d.channels = final->channels, d.height = final->height, d.width = final->width;
    d.data = final->data;
    d.data_len = (size_t)final->channels * final->height * final->width;
  }
  rc = cg_datum_pack(&d, packed, len);
  free(encoded);
  return rc;
}

static int convert_imageset(const char *root, const char *list, const char *out, const imageset_options *o) {
  cg_image_list_options lo = {.root_folder = root};
  cg_source *src;
  int rc = cg_source_open("image_list", list, &lo, &src);
  if (rc) return rc;
  size_t n = cg_source_count(src);
  size_t *order = malloc(n * sizeof *order);
  if (!order) {
    cg_source_close(src);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) order[i] = i;
  if (o->shuffle) { /* Fisher-Yates with a fixed seed: the same order on every run */
    CG_LOG_INFO("Shuffling data");
    cg_rng rng;
    cg_rng_seed(&rng, 1701);
    for (size_t i = n - 1; i > 0; i--) {
      size_t j = (size_t)cg_rng_below(&rng, (uint64_t)i + 1), t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }
  if (o->gray) CG_LOG_INFO("Converting to grey images");
  CG_LOG_INFO("A total of %zu images.", n);
  cg_lmdb_writer *w;
  rc = cg_lmdb_writer_open(out, &w);
  if (rc) {
    free(order);
    cg_source_close(src);
    return rc;
  }
  cg_image img = {0}, resized = {0};
  size_t root_len = strlen(root), written = 0, skipped = 0;
  int first_h = 0, first_w = 0;
  for (size_t line_id = 0; line_id < n && !rc; line_id++) {
    cg_record rec;
    rc = cg_source_get(src, order[line_id], &rec);
    const char *line_path = rc ? "" : rec.id + root_len;
    uint8_t *packed = NULL;
    size_t len = 0;
    int h = 0, wd = 0;
    if (!rc) rc = make_datum(o, &rec, line_path, &img, &resized, &packed, &len, &h, &wd);
    if (!rc && o->check_size) {
      if (written == 0)
        first_h = h, first_w = wd;
      else if (h != first_h || wd != first_w)
        rc = cg_error(CG_ERR_SHAPE, "'%s' is %dx%d, the first image was %dx%d (--check_size)", rec.id, h, wd, first_h,
                      first_w);
    }
    if (rc) {
      free(packed);
      if (!o->skip_bad) break;
      CG_LOG_WARN("skipping a bad image (CAFFEGRID_SKIP_BAD_RECORDS): %s", cg_error_message());
      skipped++;
      rc = CG_OK;
      continue;
    }
    size_t key_cap = strlen(line_path) + 32;
    char *key = malloc(key_cap);
    if (key) {
      int key_len = snprintf(key, key_cap, "%08zu_%s", line_id, line_path);
      rc = cg_lmdb_writer_put(w, key, (size_t)key_len, packed, len);
    } else {
      rc = cg_error(CG_ERR_NOMEM, "out of memory");
    }
    free(key);
    free(packed);
    if (!rc && ++written % 1000 == 0) CG_LOG_INFO("Processed %zu files.", written);
  }
  if (rc)
    cg_lmdb_writer_abort(w);
  else
    rc = cg_lmdb_writer_close(w);
  if (!rc && written % 1000 != 0) CG_LOG_INFO("Processed %zu files.", written);
  if (!rc && skipped) CG_LOG_WARN("skipped %zu bad images of %zu (CAFFEGRID_SKIP_BAD_RECORDS)", skipped, n);
  cg_image_free(&img);
  cg_image_free(&resized);
  free(order);
  cg_source_close(src);
  return rc;
}

int cmd_convert_imageset(int argc, char **argv) {
  cg_flag flags[] = {
      {"gray", NULL, true, "decode as one grey channel (default: BGR colour)"},
      {"shuffle", NULL, true, "shuffle the lines (fixed seed, so repeatable)"},
      {"resize_height", NULL, false, "resize to this height (with --resize_width)"},
      {"resize_width", NULL, false, "resize to this width (with --resize_height)"},
      {"encoded", NULL, true, "store JPEG/PNG bytes instead of raw pixels"},
      {"encode_type", NULL, false, "jpg or png (default: each file's own format)"},
      {"check_size", NULL, true, "fail when images differ in size"},
      {"backend", NULL, false, "lmdb (the only one)"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  const char *synopsis =
      "ROOT_FOLDER/ LIST OUT_DB [--gray] [--shuffle] [--resize_height=H --resize_width=W] "
      "[--encoded [--encode_type=jpg|png]]";
  char *positional[16];
  int np = 0;
  if (argc > 16 || cg_flags_parse(argc, argv, flags, positional, &np, "convert imageset")) return 1;
  if (flag_true(flags, "help")) {
    cg_flags_usage(flags, "convert imageset", synopsis);
    return 0;
  }
  if (np != 3) {
    cg_flags_usage(flags, "convert imageset", synopsis);
    return 1;
  }
  long rh, rw;
  if (!cg_flag_int(flags, "resize_height", 0, &rh) || !cg_flag_int(flags, "resize_width", 0, &rw)) return 1;
  if (rh < 0 || rw < 0 || rh > 65535 || rw > 65535) {
    fprintf(stderr, "caffegrid convert imageset: --resize_height/--resize_width must be from 0 to 65535\n");
    return 1;
  }
  const char *backend = cg_flag_get(flags, "backend");
  if (backend && strcasecmp(backend, "lmdb") != 0) {
    fprintf(stderr, "caffegrid convert imageset: --backend=%s: only lmdb is supported\n", backend);
    return 1;
  }
  imageset_options o = {
      .gray = flag_true(flags, "gray"),
      .encoded = flag_true(flags, "encoded"),
      .check_size = flag_true(flags, "check_size"),
      .shuffle = flag_true(flags, "shuffle"),
      .encode_type = cg_flag_get(flags, "encode_type") ? cg_flag_get(flags, "encode_type") : "",
      .resize_h = (int)rh,
      .resize_w = (int)rw,
  };
  const char *skip = getenv("CAFFEGRID_SKIP_BAD_RECORDS");
  o.skip_bad = skip && skip[0] && strcmp(skip, "0") != 0 && strcmp(skip, "false") != 0;
  if (o.encode_type[0]) {
    if (strcasecmp(o.encode_type, "jpg") != 0 && strcasecmp(o.encode_type, "jpeg") != 0 &&
        strcasecmp(o.encode_type, "png") != 0) {
      fprintf(stderr, "caffegrid convert imageset: --encode_type=%s: expected jpg or png\n", o.encode_type);
      return 1;
    }
    if (!o.encoded) CG_LOG_INFO("encode_type specified, assuming encoded=true.");
    o.encoded = true;
  }
  if (convert_imageset(positional[0], positional[1], positional[2], &o)) {
    fprintf(stderr, "caffegrid convert imageset: %s\n", cg_error_message());
    return 1;
  }
  return 0;
}
