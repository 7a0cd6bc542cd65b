/* The update-rule table built from CG_UPDATE_RULE_LIST. */
#include "solvers/update_rule.h"

#include <string.h>

cg_update_fn cg_update_rule_find(const char *type, int *history_slots) {
#define CG_MATCH_UPDATE(name, fn, slots) \
  if (strcmp(type, name) == 0) {         \
    *history_slots = slots;              \
    return fn;                           \
  }
  CG_UPDATE_RULE_LIST(CG_MATCH_UPDATE)
#undef CG_MATCH_UPDATE
  return NULL;
}
