/* caffegrid convert cifar DIR OUT_DIR: Caffe's convert_cifar_data. The CIFAR-10
 * binary batches in DIR (data_batch_1.bin .. data_batch_5.bin, test_batch.bin; each
 * record one label byte + 3072 pixel bytes, red, green then blue planes of 32x32)
 * become OUT_DIR/cifar10_train_lmdb and OUT_DIR/cifar10_test_lmdb: Datum 3x32x32
 * with the pixels as stored (Caffe keeps CIFAR's RGB order), keys "%05d" counting
 * from 0 in each database. Every file is checked before anything is written. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "commands.h"
#include "caffegrid/lmdb_writer.h"
#include "caffegrid/caffe_files.h"

enum { CIFAR_SIDE = 32, CIFAR_PIXELS = 3 * 32 * 32, CIFAR_RECORD = 1 + CIFAR_PIXELS, CIFAR_CLASSES = 10 };

typedef struct batch {
  char path[4096];
  uint8_t *data;
  size_t len;
} batch;

static int load_batch(const char *dir, const char *name, batch *b) {
  snprintf(b->path, sizeof b->path, "%s/%s", dir, name);
  FILE *fp = fopen(b->path, "rb");
  if (!fp) return cg_error(CG_ERR_IO, "cannot open CIFAR-10 batch '%s': %s", b->path, strerror(errno));
  struct stat st;
  int rc = CG_OK;
  if (fstat(fileno(fp), &st) != 0 || st.st_size <= 0 || st.st_size % CIFAR_RECORD != 0) {
    rc = cg_error(CG_ERR_CORRUPT,
                  "'%s' is not a CIFAR-10 binary batch: %lld bytes is not a whole number of %d-byte records",
                  b->path, (long long)st.st_size, CIFAR_RECORD);
  } else if (!(b->data = malloc((size_t)st.st_size))) {
    rc = cg_error(CG_ERR_NOMEM, "out of memory reading '%s'", b->path);
  } else if (fread(b->data, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
    rc = cg_error(CG_ERR_IO, "cannot read '%s'", b->path);
  }
  fclose(fp);
  if (rc) return rc;
  b->len = (size_t)st.st_size;
  for (size_t i = 0; i < b->len; i += CIFAR_RECORD)
    if (b->data[i] >= CIFAR_CLASSES)
      return cg_error(CG_ERR_CORRUPT, "'%s': record %zu has label %u; CIFAR-10 labels are 0 to 9 (CIFAR-100 is not supported)",
                      b->path, i / CIFAR_RECORD, b->data[i]);
  return CG_OK;
}

static int write_db(const char *path, const batch *batches, int n, size_t *count) {
  cg_lmdb_writer *w;
  int rc = cg_lmdb_writer_open(path, &w);
  if (rc) return rc;
  *count = 0;
  for (int f = 0; f < n && !rc; f++) {
    for (size_t at = 0; at < batches[f].len && !rc; at += CIFAR_RECORD) {
      cg_datum d = {.channels = 3, .height = CIFAR_SIDE, .width = CIFAR_SIDE, .label = batches[f].data[at],
                    .has_label = true, .data = batches[f].data + at + 1, .data_len = CIFAR_PIXELS};
      uint8_t *packed;
      size_t len;
      rc = cg_datum_pack(&d, &packed, &len);
      if (rc) break;
      char key[32];
      snprintf(key, sizeof key, "%05zu", (*count)++);
      rc = cg_lmdb_writer_put(w, key, strlen(key), packed, len);
      free(packed);
    }
  }
  if (rc) {
    cg_lmdb_writer_abort(w);
    return rc;
  }
  return cg_lmdb_writer_close(w);
}

static int convert_cifar(const char *dir, const char *out_dir) {
  batch batches[6];
  memset(batches, 0, sizeof batches);
  int rc = CG_OK;
  for (int i = 0; i < 6 && !rc; i++) {
    char name[32];
    if (i < 5) snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
    else snprintf(name, sizeof name, "test_batch.bin");
    rc = load_batch(dir, name, &batches[i]);
  }
  char train[4200], test[4200];
  snprintf(train, sizeof train, "%s/cifar10_train_lmdb", out_dir);
  snprintf(test, sizeof test, "%s/cifar10_test_lmdb", out_dir);
  struct stat st;
  if (!rc && stat(train, &st) == 0) rc = cg_error(CG_ERR_IO, "LMDB '%s' already exists (not overwritten)", train);
  if (!rc && stat(test, &st) == 0) rc = cg_error(CG_ERR_IO, "LMDB '%s' already exists (not overwritten)", test);
  if (!rc && mkdir(out_dir, 0775) != 0 && errno != EEXIST)
    rc = cg_error(CG_ERR_IO, "cannot create '%s': %s", out_dir, strerror(errno));
  size_t n_train = 0, n_test = 0;
  if (!rc) {
    CG_LOG_INFO("Writing Training data");
    rc = write_db(train, batches, 5, &n_train);
  }
  if (!rc) {
    CG_LOG_INFO("Writing Testing data");
    rc = write_db(test, batches + 5, 1, &n_test);
    if (rc) { /* leave nothing half-made behind: the train LMDB is data.mdb and lock.mdb in a directory */
      char file[4300];
      snprintf(file, sizeof file, "%s/data.mdb", train);
      remove(file);
      snprintf(file, sizeof file, "%s/lock.mdb", train);
      remove(file);
      rmdir(train);
    }
  }
  if (!rc) CG_LOG_INFO("Wrote %zu training and %zu test images.", n_train, n_test);
  for (int i = 0; i < 6; i++) free(batches[i].data);
  return rc;
}

int cmd_convert_cifar(int argc, char **argv) {
  if (argc != 2 || argv[0][0] == '-') {
    fprintf(stderr, "usage: caffegrid convert cifar DIR OUT_DIR\n"
                    "  DIR holds data_batch_1.bin .. data_batch_5.bin and test_batch.bin (CIFAR-10 binary version);\n"
                    "  writes OUT_DIR/cifar10_train_lmdb and OUT_DIR/cifar10_test_lmdb\n");
    return 1;
  }
  if (convert_cifar(argv[0], argv[1])) {
    fprintf(stderr, "caffegrid convert cifar: %s\n", cg_error_message());
    return 1;
  }
  return 0;
}
