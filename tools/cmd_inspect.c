/* caffegrid inspect PATH [-n N]: says what a data file is and what it holds.
 * Recognises LMDB (a directory with data.mdb, or data.mdb itself), Hadoop
 * SequenceFiles (a file, or a directory of part files), HDF5 files and HDF5 list
 * files, image lists ("path label" lines), and Caffe's binary protobufs
 * (.caffemodel, .solverstate, .binaryproto). Data files get a line "records: N"
 * followed by the first N (default 5) ids, shapes and labels. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caffegrid/data.h"
#include "caffegrid/error.h"
#include "caffegrid/caffe_files.h"
#include "commands.h"
#include "caffegrid/hdf5.h"
#include "caffegrid/seqfile.h"
#include "caffegrid/source.h"
#include "flags.h"

/* Prints up to 60 bytes of a key: as text (a tab as \t) when printable, else as hex. */
static void print_key(const uint8_t *p, size_t n) {
  bool text = true;
  for (size_t i = 0; i < n && text; i++) text = (p[i] >= 0x20 || p[i] == '\t') && p[i] != 0x7f;
  size_t shown = n < 60 ? n : 60;
  if (text) {
    putchar('"');
    for (size_t i = 0; i < shown; i++)
      if (p[i] == '\t') fputs("\\t", stdout);
      else putchar(p[i]);
    printf("%s\"", n > shown ? "..." : "");
  } else {
    shown = n < 24 ? n : 24;
    printf("0x");
    for (size_t i = 0; i < shown; i++) printf("%02x", p[i]);
    if (n > shown) printf("...");
  }
}

/* "3x32x32 raw, label 5" for a Datum. */
static void describe_datum(const uint8_t *bytes, size_t n) {
  cg_datum d;
  void *owner;
  if (cg_datum_unpack(bytes, n, "record", &d, &owner)) {
    printf("not a valid Datum (%zu bytes)", n);
    return;
  }
  if (d.encoded) printf("encoded image, %zu bytes", d.data_len);
  else if (d.num_floats) printf("%dx%dx%d floats", d.channels, d.height, d.width);
  else printf("%dx%dx%d bytes", d.channels, d.height, d.width);
  if (d.has_label) printf(", label %d", d.label);
  cg_datum_free(owner);
}

static void describe_record(const cg_record *r) {
  switch (r->kind) {
  case CG_RECORD_DATUM: printf("Datum "); describe_datum(r->bytes, r->num_bytes); break;
  case CG_RECORD_IMAGE: printf("image file, %zu bytes", r->num_bytes); break;
  case CG_RECORD_PIXELS: printf("pixels %dx%dx%d", r->channels, r->height, r->width); break;
  case CG_RECORD_FLOATS: printf("floats %dx%dx%d", r->channels, r->height, r->width); break;
  }
  if (r->kind != CG_RECORD_DATUM && r->has_label) printf(", label %g", r->label);
}

/* records: N and the first `show` records of any source type. */
static int list_source(const char *type, const char *path, const void *options, int show) {
  cg_source *s;
  int rc = cg_source_open(type, path, options, &s);
  if (rc) return rc;
  size_t n = cg_source_count(s);
  printf("records: %zu\n", n);
  for (size_t i = 0; i < n && i < (size_t)show; i++) {
    cg_record r;
    printf("  #%zu ", i);
    if (cg_source_get(s, i, &r)) {
      printf("(%s)\n", cg_error_message());
      continue;
    }
    printf("%s: ", r.id);
    describe_record(&r);
    printf("\n");
  }
  cg_source_close(s);
  return CG_OK;
}

static int inspect_lmdb(const char *path, int show) {
  printf("%s: LMDB\n", path);
  return list_source("lmdb", path, NULL, show);
}

static const char *compression_name(cg_seqfile_compression c) {
  return c == CG_SEQFILE_BLOCK ? "block" : c == CG_SEQFILE_RECORD ? "record" : "none";
}

static int inspect_seqfile(const char *path, int show) {
  cg_seqfile *f;
  int rc = cg_seqfile_open(path, &f);
  if (rc) return rc;
  const cg_seqfile_header *h = cg_seqfile_get_header(f);
  printf("%s: Hadoop SequenceFile version %d\n", path, h->version);
  printf("  key class: %s\n  value class: %s\n", h->key_class, h->value_class);
  printf("  compression: %s%s%s%s\n", compression_name(h->compression), h->codec ? ", codec " : "",
         h->codec ? h->codec : "", h->codec && !h->codec_supported ? " (not supported: records cannot be read)" : "");
  printf("  metadata: %d entries\n", h->num_metadata);
  for (int i = 0; i < h->num_metadata && i < show; i++)
    printf("    %s = %s\n", h->metadata[2 * i], h->metadata[2 * i + 1]);
  size_t n = 0;
  cg_seqfile_pos pos;
  while ((rc = cg_seqfile_skip(f, &pos)) == 1) n++;
  if (rc < 0) {
    cg_seqfile_close(f);
    return rc;
  }
  printf("records: %zu\n", n);
  /* what the "seqfile" source makes of the first records, when it can */
  cg_source *s = NULL;
  if (n && h->codec_supported && cg_source_open("seqfile", path, NULL, &s)) s = NULL;
  cg_seqfile_rewind(f);
  cg_seqfile_record r;
  for (size_t i = 0; i < n && i < (size_t)show && h->codec_supported; i++) {
    if ((rc = cg_seqfile_next(f, &r)) != 1) break;
    printf("  #%zu key ", i);
    print_key(r.key, r.key_len);
    printf(", value %zu bytes", r.value_len);
    cg_record rec;
    if (s && cg_source_get(s, i, &rec) == 0) {
      printf(": ");
      describe_record(&rec);
    }
    printf("\n");
  }
  cg_source_close(s);
  cg_seqfile_close(f);
  return rc < 0 ? rc : CG_OK;
}

/* A directory of SequenceFiles (Spark/Hadoop output): the files, then the records. */
static int inspect_seqfile_dir(const char *path, int show) {
  printf("%s: directory of Hadoop SequenceFiles\n", path);
  return list_source("seqfile", path, NULL, show);
}

typedef struct h5_listing {
  int count;
  unsigned long long rows;
  bool has_data;
} h5_listing;

static int print_dataset(const char *name, int num_axes, const unsigned long long *shape, const char *type,
                         void *user) {
  h5_listing *l = user;
  printf("  dataset %s: %s ", name, type);
  for (int i = 0; i < num_axes; i++) printf("%s%llu", i ? "x" : "", shape[i]);
  if (num_axes == 0) printf("scalar");
  printf("\n");
  if (l->count++ == 0 || strcmp(name, "data") == 0) l->rows = num_axes ? shape[0] : 1;
  if (strcmp(name, "data") == 0) l->has_data = true;
  return 0;
}

static int inspect_hdf5(const char *path, int show) {
  printf("%s: HDF5\n", path);
  h5_listing l = {0, 0, false};
  int rc = cg_hdf5_list(path, print_dataset, &l);
  if (rc) return rc;
  if (l.has_data) return list_source("hdf5", path, NULL, show);
  printf("records: %llu\n", l.rows);
  return CG_OK;
}

static int inspect_hdf5_list(const char *path, int show) {
  char **files;
  int n;
  int rc = cg_hdf5_read_list(path, &files, &n);
  if (rc) return rc;
  printf("%s: HDF5 list file naming %d file%s\n", path, n, n == 1 ? "" : "s");
  for (int i = 0; i < n && i < show; i++) printf("  %s\n", files[i]);
  cg_hdf5_free_list(files, n);
  return list_source("hdf5", path, NULL, show);
}

/* An image list: "path label" lines (the label the last space-separated integer). */
static int inspect_image_list(const char *path, const char *text, int show) {
  size_t records = 0;
  int line_no = 0;
  const char *p = text;
  char shown[4096] = "";
  size_t used = 0;
  while (*p) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    line_no++;
    while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (len) {
      size_t sep = len;
      while (sep > 0 && p[sep - 1] != ' ' && p[sep - 1] != '\t') sep--;
      char *num_end;
      char label[32];
      size_t label_len = len - sep < sizeof label - 1 ? len - sep : sizeof label - 1;
      memcpy(label, p + sep, label_len);
      label[label_len] = 0;
      long v = strtol(label, &num_end, 10);
      if (sep == 0 || num_end == label || *num_end)
        return cg_error(CG_ERR_PARSE, "'%s' is not a known kind of data file (line %d is not 'path label': '%.*s')",
                        path, line_no, (int)(len < 100 ? len : 100), p);
      if (records < (size_t)show && used < sizeof shown - 200)
        used += (size_t)snprintf(shown + used, sizeof shown - used, "  #%zu %.*s: label %ld\n", records,
                                 (int)(sep - 1 < 150 ? sep - 1 : 150), p, v);
      records++;
    }
    p += end ? (size_t)(end - p) + 1 : len;
    if (!end) break;
  }
  if (!records) return cg_error(CG_ERR_PARSE, "'%s' is an empty text file", path);
  printf("%s: image list\nrecords: %zu\n%s", path, records, shown);
  return CG_OK;
}

static void print_blob_shape(const cg_file_blob *b) {
  for (int i = 0; i < b->num_axes && i < CG_BLOB_MAX_AXES; i++) printf("%s%lld", i ? "x" : "", (long long)b->shape[i]);
  if (!b->num_axes) printf("scalar");
  printf(" (%zu values)", b->count);
}

static int inspect_protobuf(const char *path, const uint8_t *data, size_t n, int show) {
  cg_caffe_file *f;
  if (cg_caffe_file_read(data, n, path, &f))
    return cg_error(CG_ERR_UNSUPPORTED,
                    "'%s' is not a known kind of data file (not LMDB, SequenceFile, HDF5, an image list or a Caffe "
                    "protobuf)",
                    path);
  if (f->kind == CG_CAFFE_FILE_MODEL) {
    size_t with_blobs = 0, blobs = 0;
    for (int i = 0; i < f->num_layers; i++) with_blobs += f->layers[i].num_blobs > 0, blobs += f->layers[i].num_blobs;
    printf("%s: Caffe model (NetParameter%s) '%s'\n", path, f->v1_layers ? ", old V1 layers" : "", f->net_name);
    printf("layers: %d, %zu with weights, %zu blobs\n", f->num_layers, with_blobs, blobs);
    int printed = 0;
    /* V1 layers are counted but not listed: their type is an enum, not a name */
    for (int i = 0; i < f->num_layers && printed < show; i++) {
      const cg_file_layer *l = &f->layers[i];
      if (!l->num_blobs || !l->type[0]) continue;
      printf("  %s (%s):", l->name[0] ? l->name : "?", l->type);
      for (int b = 0; b < l->num_blobs; b++) {
        printf(" ");
        print_blob_shape(&l->blobs[b]);
      }
      printf("\n");
      printed++;
    }
  } else if (f->kind == CG_CAFFE_FILE_SOLVER_STATE) {
    printf("%s: Caffe solver state (SolverState)\n  iter: %d\n  learned_net: %s\n  history blobs: %d\n", path, f->iter,
           f->learned_net, f->num_history);
  } else {
    printf("%s: Caffe blob (BlobProto, e.g. a mean file): ", path);
    print_blob_shape(&f->blob);
    printf(", mean value %g\n", f->blob.mean);
  }
  cg_caffe_file_free(f);
  return CG_OK;
}

/* A whole file in memory (NUL-terminated), for image lists and protobufs. */
static int read_whole(const char *path, uint8_t **data, size_t *n) {
  struct stat st;
  if (stat(path, &st) != 0) return cg_error(CG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  if (st.st_size > (off_t)1 << 31) return cg_error(CG_ERR_UNSUPPORTED, "'%s' is not a known kind of data file", path);
  *data = malloc((size_t)st.st_size + 1);
  if (!*data) return cg_error(CG_ERR_NOMEM, "out of memory");
  FILE *fp = fopen(path, "rb");
  *n = fp ? fread(*data, 1, (size_t)st.st_size, fp) : 0;
  if (fp) fclose(fp);
  (*data)[*n] = 0;
  return CG_OK;
}

static int inspect_path(const char *path, int show) {
  cg_data_kind kind;
  int rc = cg_data_kind_of(path, &kind);
  if (rc) return rc;
  switch (kind) {
  case CG_DATA_LMDB: return inspect_lmdb(path, show);
  case CG_DATA_SEQFILE: return inspect_seqfile(path, show);
  case CG_DATA_SEQFILE_DIR: return inspect_seqfile_dir(path, show);
  case CG_DATA_HDF5: return inspect_hdf5(path, show);
  case CG_DATA_HDF5_LIST: return inspect_hdf5_list(path, show);
  default: break;
  }
  uint8_t *data = NULL;
  size_t n = 0;
  rc = read_whole(path, &data, &n);
  if (!rc) rc = kind == CG_DATA_IMAGE_LIST ? inspect_image_list(path, (const char *)data, show)
                                           : inspect_protobuf(path, data, n, show);
  free(data);
  return rc;
}

int cmd_inspect(int argc, char **argv) {
  cg_flag flags[] = {
      {.name = "n", .help = "how many records to show (default 5)"},
      {NULL},
  };
  char *positional[8];
  int np = 0;
  if (argc > 8 || cg_flags_parse(argc, argv, flags, positional, &np, "inspect")) return 1;
  long show = 5;
  if (np != 1 || !cg_flag_int(flags, "n", 5, &show) || show < 0) {
    cg_flags_usage(flags, "inspect", "PATH   (LMDB, SequenceFile, HDF5 or list, image list, caffemodel, binaryproto)");
    return 1;
  }
  if (inspect_path(positional[0], (int)(show > 1000000 ? 1000000 : show))) {
    fflush(stdout);
    fprintf(stderr, "caffegrid inspect: %s\n", cg_error_message());
    return 1;
  }
  return 0;
}
