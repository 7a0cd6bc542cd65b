/* The parts of HDF5 support that need no libhdf5, built with or without it: freeing
 * arrays, recognising an HDF5 file by its signature, and HDF5Data's list files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "data/hdf5_source.h"

void cg_hdf5_array_free(cg_hdf5_array *a) {
  if (!a) return;
  free(a->data);
  a->data = NULL;
}

bool cg_hdf5_is_file(const char *path) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  FILE *fp = fopen(path, "rb");
  if (!fp) return false;
  bool found = false;
  /* the superblock sits at 0, 512, 1024, 2048, ... */
  for (long at = 0; at <= 1L << 20 && !found; at = at ? at * 2 : 512) {
    unsigned char buf[8];
    if (fseek(fp, at, SEEK_SET) != 0 || fread(buf, 1, 8, fp) != 8) break;
    found = memcmp(buf, sig, 8) == 0;
  }
  fclose(fp);
  return found;
}

/* ---- list files ---- */

void cg_hdf5_free_list(char **paths, int num_paths) {
  if (!paths) return;
  for (int i = 0; i < num_paths; i++) free(paths[i]);
  free(paths);
}

/* `name` as given, or beside the list file when only that one exists. */
static char *resolve(const char *list_path, const char *name) {
  if (name[0] != '/' && access(name, F_OK) != 0) {
    const char *slash = strrchr(list_path, '/');
    if (slash) {
      size_t dir = (size_t)(slash - list_path);
      char *beside = malloc(dir + strlen(name) + 2);
      if (!beside) return NULL;
      memcpy(beside, list_path, dir);
      beside[dir] = '/';
      strcpy(beside + dir + 1, name);
      if (access(beside, F_OK) == 0) return beside;
      free(beside);
    }
  }
  return strdup(name);
}

int cg_hdf5_read_list(const char *list_path, char ***paths, int *num_paths) {
  *paths = NULL;
  *num_paths = 0;
  FILE *fp = fopen(list_path, "r");
  if (!fp) return cg_error(CG_ERR_IO, "cannot open HDF5 list file '%s': %s", list_path, strerror(errno));
  char **list = NULL;
  int n = 0, rc = CG_OK;
  char word[4096];
  for (;;) {
    int got = fscanf(fp, "%4095s", word);
    if (got != 1) break;
    char **grown = realloc(list, (size_t)(n + 1) * sizeof *list);
    if (!grown || !(grown[n] = resolve(list_path, word))) {
      if (grown) list = grown;
      rc = cg_error(CG_ERR_NOMEM, "out of memory");
      break;
    }
    list = grown;
    n++;
  }
  if (!rc && ferror(fp)) rc = cg_error(CG_ERR_IO, "cannot read HDF5 list file '%s'", list_path);
  fclose(fp);
  if (!rc && n == 0) rc = cg_error(CG_ERR_INVALID, "HDF5 list file '%s' names no files", list_path);
  if (rc) {
    cg_hdf5_free_list(list, n);
    return rc;
  }
  *paths = list;
  *num_paths = n;
  return CG_OK;
}
