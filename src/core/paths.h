/* How paths named inside a file are found, in one place: Caffe resolves them against
 * the working directory; caffegrid also looks beside the file that names them (the
 * solver for its net, the solverstate for its learned_net). */
#ifndef CG_CORE_PATHS_H
#define CG_CORE_PATHS_H

#include <stdbool.h>

bool cg_path_exists(const char *path);
/* `name` in the folder of `anchor_file` (just `name` when the anchor has no folder);
 * malloc'd, NULL when out of memory. */
char *cg_path_beside(const char *name, const char *anchor_file);
/* `path` as written when it exists or is absolute; else beside `anchor_file` when that
 * exists; else as written (so the caller's error names what the user wrote). Malloc'd,
 * NULL when out of memory. */
char *cg_path_resolve(const char *path, const char *anchor_file);

#endif
