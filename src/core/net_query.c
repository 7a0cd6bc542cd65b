/* Questions about a net answered from its text without building it (see
 * cg_net_text_memory_data in caffegrid/net.h): the host program asks the library
 * instead of reading prototxt itself, so phase rules and field syntax are Caffe's. */
#include <stdio.h>
#include <string.h>

#include "caffegrid/error.h"
#include "core/net_impl.h"
#include "proto/proto_io.h"

static void copy_text(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : ""); }

static void describe(const Caffe__LayerParameter *p, cg_memory_data_info *out) {
  copy_text(out->layer, sizeof out->layer, p->name);
  copy_text(out->source_class, sizeof out->source_class, p->source_class);
  const Caffe__MemoryDataParameter *m = p->memory_data_param;
  if (m) {
    out->batch_size = (int)m->batch_size, out->channels = (int)m->channels;
    out->height = (int)m->height, out->width = (int)m->width;
    copy_text(out->source, sizeof out->source, m->source);
    out->image_encoded = m->image_encoded;
  }
  const Caffe__TransformationParameter *t = p->transform_param;
  out->scale = t && t->has_scale ? t->scale : 1.0f;
  if (!t) return;
  out->crop_size = (int)t->crop_size;
  out->mirror = t->mirror, out->force_color = t->force_color, out->force_gray = t->force_gray;
  copy_text(out->mean_file, sizeof out->mean_file, t->mean_file);
  out->num_mean_values = (int)t->n_mean_value;
  for (size_t i = 0; i < t->n_mean_value && i < 4; i++) out->mean_values[i] = t->mean_value[i];
}

int cg_net_text_memory_data(const char *text, size_t len, const char *source_name, int phase, cg_memory_data_info *out) {
  memset(out, 0, sizeof *out);
  const char *name = source_name ? source_name : "net";
  if (phase != 0 && phase != 1) return cg_error(CG_ERR_INVALID, "%s: phase %d (0 = TRAIN, 1 = TEST)", name, phase);
  Caffe__NetParameter *net = NULL;
  int rc = cg_parse_net_text(text, len, name, &net);
  if (rc) return rc;
  cg_net_options state = {.phase = phase, .world_size = 1};
  const Caffe__LayerParameter *found = NULL;
  for (size_t i = 0; i < net->n_layer && !found; i++) {
    const Caffe__LayerParameter *p = net->layer[i];
    if (p->type && strcmp(p->type, "MemoryData") == 0 && cg_net_layer_included(&state, p)) found = p;
  }
  if (found) describe(found, out);
  else rc = cg_error(CG_ERR_NOT_FOUND, "%s: no MemoryData layer for phase %s", name, phase ? "TEST" : "TRAIN");
  protobuf_c_message_free_unpacked(&net->base, NULL);
  return rc;
}
