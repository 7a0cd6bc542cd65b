/* Paths named inside files (see paths.h). */
#include "core/paths.h"

#include "caffegrid/error.h"
#include "caffegrid/local_path.h"

#include <ctype.h>
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

int cg_local_path(const char *path, const char *what, const char **local) {
  *local = path;
  if (!path) return CG_OK;
  if (strncmp(path, "file://", 7) == 0) return *local = path + 7, CG_OK;
  if (strncmp(path, "file:", 5) == 0) return *local = path + 5, CG_OK;
  /* a scheme: letters, digits, + - . before "://" (RFC 3986), nothing else before it */
  const char *s = path;
  while (*s && (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')) s++;
  if (s > path && strncmp(s, "://", 3) == 0)
    return cg_error(CG_ERR_UNSUPPORTED,
                    "%s '%s' is on a Hadoop filesystem (%.*s), which this program does not reach: give a local path "
                    "(or file:), or run through caffegrid.spark / spark_submit.py",
                    what, path, (int)(s - path), path);
  return CG_OK;
}
