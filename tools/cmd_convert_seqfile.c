/* caffegrid convert seqfile ROOT LIST OUT.seq: an image list ("path label" per line,
 * as for convert imageset) into a Hadoop SequenceFile the "seqfile" source reads:
 * Text key "path<TAB>label" (our key convention, see src/data/seqfile_source.h),
 * BytesWritable value = the file's bytes (ROOT + path, as Caffe joins them). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "commands.h"
#include "caffegrid/seqfile.h"
#include "flags.h"

static int read_file(const char *path, uint8_t **buf, size_t *cap, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return cg_error(CG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  size_t n = 0;
  int rc = CG_OK;
  for (;;) {
    if (n == *cap) {
      size_t grown = *cap ? *cap * 2 : 1 << 20;
      uint8_t *p = realloc(*buf, grown);
      if (!p) {
        rc = cg_error(CG_ERR_NOMEM, "out of memory reading '%s'", path);
        break;
      }
      *buf = p, *cap = grown;
    }
    size_t got = fread(*buf + n, 1, *cap - n, fp);
    n += got;
    if (got == 0) {
      if (ferror(fp)) rc = cg_error(CG_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
      break;
    }
  }
  fclose(fp);
  *len = n;
  return rc;
}

static int convert_seqfile(const char *root, const char *list, const char *out, cg_seqfile_compression mode) {
  FILE *fp = fopen(list, "r");
  if (!fp) return cg_error(CG_ERR_IO, "cannot open list '%s': %s", list, strerror(errno));
  cg_seqfile_writer *w;
  int rc = cg_seqfile_writer_open(out, mode, &w);
  if (rc) {
    fclose(fp);
    return rc;
  }
  char *line = NULL, *key = NULL, *path = NULL;
  size_t line_cap = 0, cap = 0, len = 0, count = 0;
  uint8_t *buf = NULL;
  int line_no = 0;
  ssize_t got;
  while (!rc && (got = getline(&line, &line_cap, fp)) >= 0) {
    line_no++;
    while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r' || line[got - 1] == ' ' || line[got - 1] == '\t'))
      line[--got] = 0;
    if (got == 0) continue;
    /* "path label": the label is the last space- or tab-separated token */
    char *sep = strrchr(line, ' '), *tab = strrchr(line, '\t');
    if (tab && (!sep || tab > sep)) sep = tab;
    char *end = NULL;
    if (sep) strtol(sep + 1, &end, 10);
    if (!sep || end == sep + 1 || *end != 0) {
      rc = cg_error(CG_ERR_PARSE, "%s:%d: expected 'path label', got '%.200s'", list, line_no, line);
      break;
    }
    *sep = 0;
    const char *label = sep + 1;
    free(path);
    free(key);
    path = malloc(strlen(root) + strlen(line) + 1);
    key = malloc(strlen(line) + strlen(label) + 2);
    if (!path || !key) {
      rc = cg_error(CG_ERR_NOMEM, "out of memory");
      break;
    }
    sprintf(path, "%s%s", root, line);
    sprintf(key, "%s\t%s", line, label);
    rc = read_file(path, &buf, &cap, &len);
    if (rc) {
      cg_error_wrap(rc, "%s:%d: ", list, line_no);
      break;
    }
    rc = cg_seqfile_writer_append(w, key, strlen(key), buf, len);
    count++;
  }
  fclose(fp);
  free(line);
  free(key);
  free(path);
  free(buf);
  if (!rc && count == 0) rc = cg_error(CG_ERR_INVALID, "list '%s' names no files", list);
  if (rc) {
    cg_seqfile_writer_abort(w);
    return rc;
  }
  rc = cg_seqfile_writer_close(w);
  if (!rc) CG_LOG_INFO("Processed %zu files.", count);
  return rc;
}

int cmd_convert_seqfile(int argc, char **argv) {
  cg_flag flags[] = {
      {.name = "compression", .help = "none (default), record or block: zlib, as Hadoop's DefaultCodec"},
      {NULL},
  };
  const char *synopsis = "ROOT_FOLDER/ LIST OUT.seq";
  char *positional[8];
  int np = 0;
  if (argc > 8 || cg_flags_parse(argc, argv, flags, positional, &np, "convert seqfile")) return 1;
  if (np != 3) {
    cg_flags_usage(flags, "convert seqfile", synopsis);
    return 1;
  }
  const char *c = cg_flag_get(flags, "compression");
  cg_seqfile_compression mode = CG_SEQFILE_NONE;
  if (c && strcmp(c, "record") == 0) mode = CG_SEQFILE_RECORD;
  else if (c && strcmp(c, "block") == 0) mode = CG_SEQFILE_BLOCK;
  else if (c && strcmp(c, "none") != 0) {
    fprintf(stderr, "caffegrid convert seqfile: --compression=%s: expected none, record or block\n", c);
    return 1;
  }
  if (convert_seqfile(positional[0], positional[1], positional[2], mode)) {
    fprintf(stderr, "caffegrid convert seqfile: %s\n", cg_error_message());
    return 1;
  }
  return 0;
}
