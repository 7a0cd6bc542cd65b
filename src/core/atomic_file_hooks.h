/* The atomic writer's test hook, kept out of the public header: the CLI sets it from
 * CAFFEGRID_FAULT_BEFORE_RENAME for the crash-safety test, and the process then dies
 * as kill -9 would once a file whose path contains `path_part` is written and synced
 * but not yet renamed into place. NULL or "" turns it off. */
#ifndef CG_CORE_ATOMIC_FILE_HOOKS_H
#define CG_CORE_ATOMIC_FILE_HOOKS_H

void cg_atomic_file_fault_before_rename(const char *path_part);

#endif
