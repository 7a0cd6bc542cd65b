/* caffegrid/atomic_file.h: a file holds its old content or all of the new; no
 * temporary file is left behind by a commit, an abort or a failure; writers of the
 * same path in one process use different temporary files (several threads
 * committing at once leave one whole version); errors name the user's path. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/atomic_file.h"
#include "caffegrid/error.h"
#include "check.h"

static char dir[] = "/tmp/cg_atomic_XXXXXX";

static char *read_text(const char *path) {
  static char buf[1 << 16];
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

/* entries of dir whose name holds ".tmp." */
static int temporaries(void) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
  if (d) closedir(d);
  return n;
}

static void test_commit_and_replace(const char *path) {
  CHECK_EQ_INT(cg_write_file_atomic(path, "first version\n", 14), 0);
  CHECK(read_text(path) && strcmp(read_text(path), "first version\n") == 0);
  cg_atomic_file *f;
  CHECK_EQ_INT(cg_atomic_file_open(path, &f), 0);
  fprintf(cg_atomic_file_stream(f), "second %d\n", 2);
  CHECK(strcmp(read_text(path), "first version\n") == 0); /* untouched until the commit */
  CHECK_EQ_INT(temporaries(), 1);
  CHECK_EQ_INT(cg_atomic_file_commit(f), 0);
  CHECK(strcmp(read_text(path), "second 2\n") == 0);
  CHECK_EQ_INT(temporaries(), 0);
}

static void test_abort_keeps_the_old_file(const char *path) {
  cg_atomic_file *f;
  CHECK_EQ_INT(cg_atomic_file_open(path, &f), 0);
  fprintf(cg_atomic_file_stream(f), "never seen\n");
  cg_atomic_file_abort(f);
  cg_atomic_file_abort(NULL);
  CHECK(strcmp(read_text(path), "second 2\n") == 0);
  CHECK_EQ_INT(temporaries(), 0);
}

static void test_errors_name_the_path(void) {
  CHECK_EQ_INT(cg_write_file_atomic("/nonexistent/dir/model.caffemodel", "x", 1), CG_ERR_IO);
  CHECK_STR_CONTAINS(cg_error_message(), "/nonexistent/dir/model.caffemodel");
  cg_atomic_file *f = (cg_atomic_file *)1;
  CHECK(cg_atomic_file_open("", &f) == CG_ERR_INVALID && f == NULL);
}

typedef struct writer {
  const char *path;
  char text[64];
  int rc;
} writer;

static void *write_many(void *arg) {
  writer *w = arg;
  for (int i = 0; i < 50 && !w->rc; i++) w->rc = cg_write_file_atomic(w->path, w->text, strlen(w->text));
  return NULL;
}

static void test_concurrent_writers(const char *path) {
  writer w[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (writer){.path = path};
    /* different lengths, so a mixed file would show */
    snprintf(w[i].text, sizeof w[i].text, "writer %d %.*s\n", i, 10 * i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    pthread_create(&t[i], NULL, write_many, &w[i]);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  int whole = 0;
  for (int i = 0; i < 4; i++) {
    CHECK_EQ_INT(w[i].rc, 0);
    whole += strcmp(read_text(path), w[i].text) == 0;
  }
  CHECK_MSG(whole == 1, "the file is not one writer's whole text: '%s'", read_text(path));
  CHECK_EQ_INT(temporaries(), 0);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  char path[256];
  snprintf(path, sizeof path, "%s/results.txt", dir);
  test_commit_and_replace(path);
  test_abort_keeps_the_old_file(path);
  test_errors_name_the_path();
  test_concurrent_writers(path);
  unlink(path);
  rmdir(dir);
  return CHECK_REPORT();
}
