/* Command-line flags in every spelling Caffe users type: -flag value,
 * -flag=value, --flag=value, --flag value. Bare boolean flags are "true". */
#ifndef CG_TOOLS_FLAGS_H
#define CG_TOOLS_FLAGS_H

#include <stdbool.h>

typedef struct cg_flag {
  const char *name;
  const char *value; /* NULL when not given */
  bool boolean;      /* takes no value */
  const char *help;
} cg_flag;

/* Parses argv into flags (named in `flags`, ending with a {NULL} entry) and
 * positional arguments (kept in order in positional, count in *num_positional).
 * Returns 0, or prints an error naming the unknown flag and returns 1. */
int cg_flags_parse(int argc, char **argv, cg_flag *flags, char **positional, int *num_positional, const char *command);
const char *cg_flag_get(const cg_flag *flags, const char *name);
/* Integer value with a default; prints an error and returns false when not a number. */
bool cg_flag_int(const cg_flag *flags, const char *name, long def, long *out);
void cg_flags_usage(const cg_flag *flags, const char *command, const char *synopsis);
/* The flags every command that builds a net shares, checked the same way everywhere. */
/* -phase TRAIN|TEST into *phase (0/1; `def` when absent); prints an error and returns false otherwise. */
bool cg_flag_phase(const cg_flag *flags, int def, const char *command, int *phase);
/* -gpu (any value): this build has none; prints that and returns true, so the command stops. */
bool cg_flag_refuses_gpu(const cg_flag *flags, const char *command);

#endif
