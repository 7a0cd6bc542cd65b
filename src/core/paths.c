/* Paths named inside files (see paths.h). */
#include "core/paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool cg_path_exists(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0;
}

char *cg_path_beside(const char *name, const char *anchor_file) {
  const char *slash = anchor_file ? strrchr(anchor_file, '/') : NULL;
  char *joined = NULL;
  if (asprintf(&joined, "%.*s%s", slash ? (int)(slash - anchor_file + 1) : 0, slash ? anchor_file : "", name) < 0)
    return NULL;
  return joined;
}

char *cg_path_resolve(const char *path, const char *anchor_file) {
  if (cg_path_exists(path) || path[0] == '/' || !anchor_file || !strchr(anchor_file, '/')) return strdup(path);
  char *beside = cg_path_beside(path, anchor_file);
  if (beside && cg_path_exists(beside)) return beside;
  free(beside);
  return strdup(path);
}
