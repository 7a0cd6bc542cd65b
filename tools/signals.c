/* Signals turned into solver actions (see signals.h). The signals are blocked in
 * every computing thread and taken by one thread of their own (sigwait), which only
 * records the strongest action asked; the solver polls it between iterations. */
#include "signals.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t requested = CG_ACTION_NONE;
static cg_solver_action effect_of[3]; /* SIGINT, SIGHUP, SIGTERM */

static int slot(int sig) { return sig == SIGINT ? 0 : sig == SIGHUP ? 1 : 2; }

static void on_signal(int sig) {
  cg_solver_action a = effect_of[slot(sig)];
  if ((sig_atomic_t)a > requested) requested = (sig_atomic_t)a;
}

/* A SNAPSHOT request is served once; a STOP stays until the solver returns. */
static cg_solver_action poll(void *user) {
  (void)user;
  cg_solver_action a = (cg_solver_action)requested;
  if (a == CG_ACTION_SNAPSHOT) requested = CG_ACTION_NONE;
  return a;
}

static bool parse_effect(const cg_flag *flags, const char *name, cg_solver_action def, const char *command,
                         cg_solver_action *out) {
  const char *v = cg_flag_get(flags, name);
  *out = def;
  if (!v) return true;
  if (strcmp(v, "snapshot") == 0) return *out = CG_ACTION_SNAPSHOT, true;
  if (strcmp(v, "stop") == 0) return *out = CG_ACTION_STOP, true;
  if (strcmp(v, "none") == 0) return *out = CG_ACTION_NONE, true;
  fprintf(stderr, "caffegrid %s: -%s must be snapshot, stop or none, got '%s'\n", command, name, v);
  return false;
}

static sigset_t handled;

static void *receive(void *unused) {
  (void)unused;
  for (;;) {
    int sig;
    if (sigwait(&handled, &sig) == 0) on_signal(sig);
  }
  return NULL;
}

bool cg_signals_install(const cg_flag *flags, const char *command) {
  if (!parse_effect(flags, "sigint_effect", CG_ACTION_STOP, command, &effect_of[0]) ||
      !parse_effect(flags, "sighup_effect", CG_ACTION_SNAPSHOT, command, &effect_of[1]) ||
      !parse_effect(flags, "sigterm_effect", CG_ACTION_STOP, command, &effect_of[2]))
    return false;
  const int sigs[3] = {SIGINT, SIGHUP, SIGTERM};
  sigemptyset(&handled);
  for (int i = 0; i < 3; i++) {
    /* the handler stays for threads libraries started before us (OpenBLAS's, idle) */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, NULL);
    sigaddset(&handled, sigs[i]);
  }
  pthread_sigmask(SIG_BLOCK, &handled, NULL); /* this thread and every thread it starts */
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, receive, NULL) != 0) /* no receiver: let the handler take them here */
    pthread_sigmask(SIG_UNBLOCK, &handled, NULL);
  pthread_attr_destroy(&attr);
  return true;
}

void cg_signals_attach(cg_solver_options *opt) {
  opt->poll = poll;
  opt->poll_user = NULL;
}
