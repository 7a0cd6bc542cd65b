/* Opening a file the user named for reading, refusing what would hang or never end:
 * a FIFO (fopen blocks until a writer comes), a device, a socket, a directory. */
#ifndef CG_CORE_REGULAR_FILE_H
#define CG_CORE_REGULAR_FILE_H

#include <stdio.h>

/* *out opened "rb" on success (0). Otherwise an errno value (the open failed), or
 * -1: `path` is not a regular file; *kind then names what it is ("a FIFO", ...). */
int cg_open_regular_file(const char *path, FILE **out, const char **kind);

#endif
