/* glog-format log lines to a chosen sink. */
#include "caffegrid/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void stderr_sink(const char *line, void *user) {
  (void)user;
  fputs(line, stderr);
}

static cg_log_sink current_sink = stderr_sink;
static void *current_user;
static int quiet;

void cg_log_set_sink(cg_log_sink sink, void *user) {
  current_sink = sink ? sink : stderr_sink;
  current_user = user;
}

void cg_log_set_quiet(int q) { quiet = q; }

void cg_log_write(char severity, const char *file, int line, const char *fmt, ...) {
  if (quiet && severity == 'I') return;
  char buf[4096];
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  int n = snprintf(buf, sizeof buf, "%c%02d%02d %02d:%02d:%02d.%06ld %5d %s:%d] ", severity, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec, (int)getpid(), base, line);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof buf) vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  size_t len = strlen(buf);
  if (len + 1 < sizeof buf && (len == 0 || buf[len - 1] != '\n')) buf[len] = '\n', buf[len + 1] = '\0';
  current_sink(buf, current_user);
}
