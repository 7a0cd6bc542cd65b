/* Log lines in glog's format ("I1121 12:27:31.123456  1234 solver.c:120] ..."),
 * so Caffe's log parsers and plotting scripts read caffegrid's logs. Lines go to
 * a sink the program chooses (stderr by default). */
#ifndef CAFFEGRID_LOG_H
#define CAFFEGRID_LOG_H

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef void (*cg_log_sink)(const char *line, void *user);

/* Replaces the sink (NULL restores stderr). Not thread-safe: set it at start-up. */
void cg_log_set_sink(cg_log_sink sink, void *user);
/* Silences INFO lines (warnings and errors still go out). */
void cg_log_set_quiet(int quiet);
void cg_log_write(char severity, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define CG_LOG_INFO(...) cg_log_write('I', __FILE__, __LINE__, __VA_ARGS__)
#define CG_LOG_WARN(...) cg_log_write('W', __FILE__, __LINE__, __VA_ARGS__)
#define CG_LOG_ERROR(...) cg_log_write('E', __FILE__, __LINE__, __VA_ARGS__)

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
