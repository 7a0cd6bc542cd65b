/* Flag parsing shared by every caffegrid command. */
#include "flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/local_path.h"

static cg_flag *find(cg_flag *flags, const char *name, size_t len) {
  for (cg_flag *f = flags; f->name; f++)
    if (strlen(f->name) == len && strncmp(f->name, name, len) == 0) return f;
  return NULL;
}

/* Hadoop's spelling of paths (CaffeOnSpark's command lines): file: URIs become local
 * paths; other schemes are refused now, before any work. */
static int local_paths(cg_flag *flags, const char *command) {
  static const char *const path_flags[] = {"solver", "conf", "model", "weights", "snapshot", "output"};
  for (cg_flag *f = flags; f->name; f++) {
    bool is_path = false;
    for (size_t i = 0; i < sizeof path_flags / sizeof path_flags[0]; i++) is_path |= strcmp(f->name, path_flags[i]) == 0;
    if (!is_path || !f->value) continue;
    char what[64];
    snprintf(what, sizeof what, "-%s", f->name);
    if (cg_local_path(f->value, what, &f->value)) {
      fprintf(stderr, "caffegrid %s: %s\n", command, cg_error_message());
      return 1;
    }
  }
  return 0;
}

int cg_flags_parse(int argc, char **argv, cg_flag *flags, char **positional, int *num_positional, const char *command) {
  *num_positional = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0' || (a[1] >= '0' && a[1] <= '9')) {
      positional[(*num_positional)++] = argv[i];
      continue;
    }
    const char *name = a + (a[1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    cg_flag *f = find(flags, name, len);
    if (!f) {
      fprintf(stderr, "caffegrid %s: unknown flag '%.*s' (see 'caffegrid %s -help')\n", command, (int)len, name,
              command);
      return 1;
    }
    if (eq) {
      f->value = eq + 1;
    } else if (f->boolean) {
      f->value = "true";
    } else if (i + 1 < argc) {
      f->value = argv[++i];
    } else {
      fprintf(stderr, "caffegrid %s: flag '-%s' needs a value\n", command, f->name);
      return 1;
    }
  }
  return local_paths(flags, command);
}

const char *cg_flag_get(const cg_flag *flags, const char *name) {
  for (const cg_flag *f = flags; f->name; f++)
    if (strcmp(f->name, name) == 0) return f->value;
  return NULL;
}

bool cg_flag_int(const cg_flag *flags, const char *name, long def, long *out) {
  const char *v = cg_flag_get(flags, name);
  *out = def;
  if (!v) return true;
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end) {
    fprintf(stderr, "caffegrid: flag '-%s' expects an integer, got '%s'\n", name, v);
    return false;
  }
  *out = x;
  return true;
}

void cg_flags_usage(const cg_flag *flags, const char *command, const char *synopsis) {
  fprintf(stderr, "usage: caffegrid %s %s\n", command, synopsis);
  for (const cg_flag *f = flags; f->name; f++) fprintf(stderr, "  -%-14s %s\n", f->name, f->help ? f->help : "");
}

bool cg_flag_phase(const cg_flag *flags, int def, const char *command, int *phase) {
  const char *v = cg_flag_get(flags, "phase");
  *phase = def;
  if (!v) return true;
  if (strcmp(v, "TRAIN") == 0 || strcmp(v, "TEST") == 0) {
    *phase = strcmp(v, "TEST") == 0;
    return true;
  }
  fprintf(stderr, "caffegrid %s: -phase must be TRAIN or TEST, got '%s'\n", command, v);
  return false;
}

bool cg_flag_refuses_gpu(const cg_flag *flags, const char *command) {
  if (!cg_flag_get(flags, "gpu")) return false;
  fprintf(stderr, "caffegrid %s: -gpu was given but this build has no GPU support; run without -gpu for the CPU\n",
          command);
  return true;
}
