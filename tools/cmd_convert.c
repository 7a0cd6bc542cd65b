/* caffegrid convert: datasets into Caffe's LMDB of Datum records.
 *   convert mnist IMAGES LABELS OUT_DB   (idx files, gzipped or not; like Caffe's convert_mnist_data)
 *   convert imageset ROOT LIST OUT_DB    (image files; like Caffe's convert_imageset, cmd_convert_imageset.c)
 *   convert seqfile ROOT LIST OUT.seq    (image files into a Hadoop SequenceFile, cmd_convert_seqfile.c)
 *   convert cifar DIR OUT_DIR            (CIFAR-10 binary batches; like Caffe's convert_cifar_data, cmd_convert_cifar.c) */
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "commands.h"
#include "caffegrid/lmdb_writer.h"
#include "caffegrid/caffe_files.h"

/* Reads a whole file, gunzipping when it is gzip (zlib reads plain files as they are). */
static int read_all(const char *path, uint8_t **out, size_t *len) {
  gzFile f = gzopen(path, "rb");
  if (!f) return cg_error(CG_ERR_IO, "cannot open '%s': %s", path, errno ? strerror(errno) : "out of memory");
  size_t cap = 1 << 20, n = 0;
  uint8_t *buf = malloc(cap);
  int rc = buf ? CG_OK : cg_error(CG_ERR_NOMEM, "out of memory reading '%s'", path);
  while (!rc) {
    if (n == cap) {
      uint8_t *grown = realloc(buf, cap * 2);
      if (!grown) {
        rc = cg_error(CG_ERR_NOMEM, "out of memory reading '%s' (%zu bytes so far)", path, n);
        break;
      }
      buf = grown, cap *= 2;
    }
    int got = gzread(f, buf + n, (unsigned)(cap - n));
    if (got < 0) {
      int errnum;
      /* the message belongs to f: format it before gzclose frees it; zlib starts it with the path */
      const char *msg = gzerror(f, &errnum);
      size_t plen = strlen(path);
      if (strncmp(msg, path, plen) == 0 && msg[plen] == ':') msg += plen + 1 + (msg[plen + 1] == ' ');
      rc = cg_error(CG_ERR_CORRUPT, "cannot read '%s': %s (a damaged or incomplete gzip file?)", path, msg);
      break;
    }
    if (got == 0) break;
    n += (size_t)got;
  }
  gzclose(f);
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf;
  *len = n;
  return CG_OK;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int convert_mnist(const char *images_path, const char *labels_path, const char *out_path, uint32_t limit) {
  uint8_t *images = NULL, *labels = NULL;
  size_t images_len = 0, labels_len = 0;
  int rc = read_all(images_path, &images, &images_len);
  if (!rc) rc = read_all(labels_path, &labels, &labels_len);
  if (rc) goto done;
  if (images_len < 16 || be32(images) != 2051) {
    rc = cg_error(CG_ERR_CORRUPT, "'%s' is not an MNIST image file (idx3 magic 2051 expected, got %u)", images_path,
                  images_len >= 4 ? be32(images) : 0);
    goto done;
  }
  if (labels_len < 8 || be32(labels) != 2049) {
    rc = cg_error(CG_ERR_CORRUPT, "'%s' is not an MNIST label file (idx1 magic 2049 expected, got %u)", labels_path,
                  labels_len >= 4 ? be32(labels) : 0);
    goto done;
  }
  uint32_t n = be32(images + 4), rows = be32(images + 8), cols = be32(images + 12), nl = be32(labels + 4);
  if (n != nl) {
    rc = cg_error(CG_ERR_CORRUPT, "'%s' holds %u images but '%s' holds %u labels", images_path, n, labels_path, nl);
    goto done;
  }
  if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536 || (uint64_t)n * rows * cols + 16 != images_len) {
    rc = cg_error(CG_ERR_CORRUPT, "'%s': header says %u images of %ux%u but the file has %zu bytes", images_path, n,
                  rows, cols, images_len);
    goto done;
  }
  if ((uint64_t)n + 8 != labels_len) {
    rc = cg_error(CG_ERR_CORRUPT, "'%s': header says %u labels but the file has %zu bytes", labels_path, n, labels_len);
    goto done;
  }
  uint32_t records = limit && limit < n ? limit : n; /* --limit: the first N records only */
  cg_lmdb_writer *w;
  rc = cg_lmdb_writer_open(out_path, &w);
  if (rc) goto done;
  size_t pixels = (size_t)rows * cols;
  for (uint32_t i = 0; i < records && !rc; i++) {
    cg_datum d = {.channels = 1, .height = (int)rows, .width = (int)cols, .label = labels[8 + i], .has_label = true,
                  .data = images + 16 + pixels * i, .data_len = pixels};
    uint8_t *packed;
    size_t len;
    rc = cg_datum_pack(&d, &packed, &len);
    if (rc) break;
    char key[16];
    snprintf(key, sizeof key, "%08u", i);
    rc = cg_lmdb_writer_put(w, key, strlen(key), packed, len);
    free(packed);
  }
  if (rc) cg_lmdb_writer_abort(w);
  else rc = cg_lmdb_writer_close(w);
  if (!rc) CG_LOG_INFO("Processed %u files.", records);
done:
  free(images);
  free(labels);
  return rc;
}

static const char *convert_usage =
    "usage: caffegrid convert mnist IMAGES LABELS OUT_DB [--limit=N]\n"
    "       caffegrid convert imageset ROOT_FOLDER/ LIST OUT_DB [--gray] [--shuffle] [--resize_height=H "
    "--resize_width=W] [--encoded [--encode_type=jpg|png]]\n"
    "       caffegrid convert seqfile ROOT_FOLDER/ LIST OUT.seq [--compression=none|record|block]\n"
    "       caffegrid convert cifar DIR OUT_DIR\n";

int cmd_convert(int argc, char **argv) {
  if (argc >= 1 && strcmp(argv[0], "imageset") == 0) return cmd_convert_imageset(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "seqfile") == 0) return cmd_convert_seqfile(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "cifar") == 0) return cmd_convert_cifar(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "mnist") == 0) {
    long limit = 0;
    if (argc == 5 && (strncmp(argv[4], "--limit=", 8) == 0 || strncmp(argv[4], "-limit=", 7) == 0))
      limit = atol(strchr(argv[4], '=') + 1);
    if ((argc != 4 && argc != 5) || (argc == 5 && limit <= 0)) {
      fputs(convert_usage, stderr);
      return 1;
    }
    if (convert_mnist(argv[1], argv[2], argv[3], (uint32_t)limit)) {
      fprintf(stderr, "caffegrid convert mnist: %s\n", cg_error_message());
      return 1;
    }
    return 0;
  }
  fputs(convert_usage, stderr);
  return 1;
}
