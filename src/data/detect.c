/* What kind of data file a path is (see caffegrid/data.h). */
#include "caffegrid/data.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caffegrid/error.h"
#include "data/hdf5_source.h"

enum { TEXT_PROBE = 65536, LIST_PROBE = 1 << 20 }; /* bytes read to tell text, and to classify a list */

static bool has_magic(const char *path, const char *magic, size_t n) {
  char head[8];
  FILE *fp = fopen(path, "rb");
  if (!fp) return false;
  bool same = fread(head, 1, n, fp) == n && memcmp(head, magic, n) == 0;
  fclose(fp);
  return same;
}

static bool is_text(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] == 0 || (p[i] < 0x20 && p[i] != '\n' && p[i] != '\r' && p[i] != '\t')) return false;
  return n > 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n >= k && strncmp(s + n - k, suffix, k) == 0;
}

/* every whitespace-separated word names an HDF5 file (and there is one) */
static bool all_words_h5(const char *text) {
  bool any = false;
  for (const char *p = text; *p;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) break;
    size_t len = strcspn(p, " \t\r\n");
    if (!(ends_with(p, len, ".h5") || ends_with(p, len, ".hdf5") || ends_with(p, len, ".hdf"))) return false;
    any = true;
    p += len;
  }
  return any;
}

static int kind_of_directory(const char *path, cg_data_kind *kind) {
  char mdb[4200];
  struct stat st;
  snprintf(mdb, sizeof mdb, "%s/data.mdb", path);
  if (stat(mdb, &st) == 0) return *kind = CG_DATA_LMDB, CG_OK;
  DIR *d = opendir(path);
  if (!d) return cg_error(CG_ERR_IO, "cannot open directory '%s': %s", path, strerror(errno));
  bool seq = false;
  for (struct dirent *e; !seq && (e = readdir(d));) {
    if (e->d_name[0] == '.' || e->d_name[0] == '_') continue; /* Hadoop's hidden and marker files */
    char file[4400];
    snprintf(file, sizeof file, "%s/%s", path, e->d_name);
    seq = has_magic(file, "SEQ", 3);
  }
  closedir(d);
  if (seq) return *kind = CG_DATA_SEQFILE_DIR, CG_OK;
  return cg_error(CG_ERR_UNSUPPORTED, "directory '%s' is neither an LMDB (no data.mdb) nor a directory of SequenceFiles",
                  path);
}

int cg_data_kind_of(const char *path, cg_data_kind *kind) {
  *kind = CG_DATA_OTHER;
  struct stat st;
  if (!path || stat(path, &st) != 0)
    return cg_error(CG_ERR_IO, "cannot open '%s': %s", path ? path : "(none)", strerror(errno));
  if (S_ISDIR(st.st_mode)) return kind_of_directory(path, kind);
  FILE *fp = fopen(path, "rb");
  if (!fp) return cg_error(CG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  size_t want = st.st_size < LIST_PROBE ? (size_t)st.st_size : LIST_PROBE;
  uint8_t *head = malloc(want + 1);
  size_t got = head ? fread(head, 1, want, fp) : 0;
  fclose(fp);
  if (!head) return cg_error(CG_ERR_NOMEM, "out of memory");
  int rc = CG_OK;
  if (got == 0) {
    rc = cg_error(CG_ERR_INVALID, "'%s' is empty", path);
  } else if (got >= 3 && memcmp(head, "SEQ", 3) == 0) {
    *kind = CG_DATA_SEQFILE;
  } else if (cg_hdf5_is_file(path)) {
    *kind = CG_DATA_HDF5;
  } else if (got >= 20 && head[16] == 0xde && head[17] == 0xc0 && head[18] == 0xef && head[19] == 0xbe) {
    *kind = CG_DATA_LMDB; /* LMDB's first meta page: magic 0xBEEFC0DE after the 16-byte page header */
  } else if (is_text(head, got < TEXT_PROBE ? got : TEXT_PROBE)) {
    head[got] = 0;
    *kind = all_words_h5((const char *)head) ? CG_DATA_HDF5_LIST : CG_DATA_IMAGE_LIST;
  }
  free(head);
  return rc;
}

const char *cg_data_source_type(cg_data_kind kind) {
  switch (kind) {
  case CG_DATA_LMDB: return "lmdb";
  case CG_DATA_SEQFILE:
  case CG_DATA_SEQFILE_DIR: return "seqfile";
  case CG_DATA_HDF5:
  case CG_DATA_HDF5_LIST: return "hdf5";
  case CG_DATA_IMAGE_LIST: return "image_list";
  default: return NULL;
  }
}
