/* Building a net for a phase, as Caffe's Net::Init does: filter layers by
 * NetStateRule, insert splits where one top feeds several bottoms, resolve blob
 * names (in-place when a top repeats its bottom), set layers up, decide which
 * layers need backward, and lay the learnable parameters out in one flat array. */
#include <stdlib.h>
#include <string.h>

#include "core/net_impl.h"
#include "core/xalloc.h"
#include "math/backend.h"
#include "proto/proto_io.h"

/* A layer as it will be built: its parameter and its (possibly renamed) blob names. */
typedef struct layer_spec {
  const Caffe__LayerParameter *param;
  Caffe__LayerParameter *synthesized;
  int num_bottoms, num_tops;
  char **bottoms, **tops; /* owned strings */
} layer_spec;


static bool state_meets_rule(const cg_net_options *o, const Caffe__NetStateRule *r) {
  if (r->has_phase && (int)r->phase != o->phase) return false;
  if (r->has_min_level && o->level < r->min_level) return false;
  if (r->has_max_level && o->level > r->max_level) return false;
  for (size_t i = 0; i < r->n_stage; i++) {
    bool found = false;
    for (int j = 0; j < o->num_stages; j++) found |= strcmp(o->stages[j], r->stage[i]) == 0;
    if (!found) return false;
  }
  for (size_t i = 0; i < r->n_not_stage; i++)
    for (int j = 0; j < o->num_stages; j++)
      if (strcmp(o->stages[j], r->not_stage[i]) == 0) return false;
  return true;
}

bool cg_net_layer_included(const cg_net_options *o, const Caffe__LayerParameter *p) {
  if (p->n_include) {
    for (size_t i = 0; i < p->n_include; i++)
      if (state_meets_rule(o, p->include[i])) return true;
    return false;
  }
  for (size_t i = 0; i < p->n_exclude; i++)
    if (state_meets_rule(o, p->exclude[i])) return false;
  return true;
}

static void free_specs(layer_spec *specs, int n) {
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < specs[i].num_bottoms; j++) free(specs[i].bottoms[j]);
    for (int j = 0; j < specs[i].num_tops; j++) free(specs[i].tops[j]);
    free(specs[i].bottoms);
    free(specs[i].tops);
    if (specs[i].synthesized) protobuf_c_message_free_unpacked(&specs[i].synthesized->base, NULL);
  }
  free(specs);
}

static char **dup_names(char **names, size_t n) {
  char **out = cg_xcalloc(n ? n : 1, sizeof *out);
  for (size_t i = 0; out && i < n; i++) out[i] = cg_xstrdup(names[i]);
  return out;
}

/* Where a bottom comes from: the layer and top index that last produced the name. */
typedef struct producer {
  int layer, top;
} producer;

static Caffe__LayerParameter *make_split_param(const char *name, const char *blob, int count, float loss_weight) {
  Caffe__LayerParameter *p = cg_xcalloc(1, sizeof *p);
  caffe__layer_parameter__init(p);
  p->name = cg_xstrdup(name);
  p->type = cg_xstrdup("Split");
  p->n_bottom = 1;
  p->bottom = cg_xcalloc(1, sizeof(char *));
  p->bottom[0] = cg_xstrdup(blob);
  if (loss_weight != 0) {
    p->n_loss_weight = (size_t)count;
    p->loss_weight = cg_xcalloc((size_t)count, sizeof(float));
    p->loss_weight[0] = loss_weight;
  }
  return p;
}

/* Caffe's InsertSplits over the filtered layers. Split names follow Caffe's:
 * layer "<blob>_<producer>_<top>_split", tops "<blob>_<producer>_<top>_split_<k>". */
static int insert_splits(const cg_net_options *o, const Caffe__LayerParameter **kept, int n, layer_spec **out,
                         int *out_n) {
  int max_tops = 0;
  for (int i = 0; i < n; i++) max_tops = (int)kept[i]->n_top > max_tops ? (int)kept[i]->n_top : max_tops;
  /* one slot per (layer, top); n and max_tops are small and non-negative */
  size_t layers = n > 0 ? (size_t)n : 0;
  size_t slots = layers * (size_t)(unsigned)(max_tops > 0 ? max_tops : 1);
  int *refs = cg_xcalloc(slots, sizeof(int));
  int *next_split = cg_xcalloc(slots, sizeof(int));
  float *top_loss = cg_xcalloc(slots, sizeof(float));
  producer **sources = cg_xcalloc(layers + 1, sizeof *sources);
  /* name -> producer, as a simple list (nets have at most a few hundred blobs) */
  size_t known_n = 0;
  char **known_names = cg_xcalloc(slots + 1, sizeof(char *));
  producer *known_at = cg_xcalloc(slots + 1, sizeof(producer));
  int rc = CG_OK;
  for (int i = 0; i < n && !rc; i++) {
    const Caffe__LayerParameter *p = kept[i];
    sources[i] = cg_xcalloc(p->n_bottom ? p->n_bottom : 1, sizeof(producer));
    for (size_t j = 0; j < p->n_bottom; j++) {
      size_t k = known_n;
      while (k > 0 && strcmp(known_names[k - 1], p->bottom[j]) != 0) k--;
      if (k == 0) {
        rc = cg_error(CG_ERR_INVALID, "%s: layer '%s' (%s): unknown bottom blob '%s' (no earlier layer produces it)",
                      o->source_name ? o->source_name : "net", p->name ? p->name : "", p->type ? p->type : "?",
                      p->bottom[j]);
        break;
      }
      sources[i][j] = known_at[k - 1];
      refs[known_at[k - 1].layer * max_tops + known_at[k - 1].top]++;
    }
    for (size_t j = 0; j < p->n_top; j++) {
      known_names[known_n] = p->top[j];
      known_at[known_n++] = (producer){i, (int)j};
      if (p->n_loss_weight > j && p->loss_weight[j] != 0) {
        top_loss[i * max_tops + (int)j] = p->loss_weight[j];
        refs[i * max_tops + (int)j]++;
      }
    }
  }
  layer_spec *specs = NULL;
  int count = 0;
  if (!rc) {
    specs = cg_xcalloc((size_t)n * 2 + 1, sizeof *specs);
    for (int i = 0; i < n; i++) {
      const Caffe__LayerParameter *p = kept[i];
      layer_spec *s = &specs[count++];
      s->param = p;
      s->num_bottoms = (int)p->n_bottom;
      s->num_tops = (int)p->n_top;
      s->bottoms = dup_names(p->bottom, p->n_bottom);
      s->tops = dup_names(p->top, p->n_top);
      for (size_t j = 0; j < p->n_bottom; j++) {
        producer src = sources[i][j];
        int slot = src.layer * max_tops + src.top;
        if (refs[slot] > 1) {
          free(s->bottoms[j]);
          s->bottoms[j] = cg_xprintf("%s_%s_%d_split_%d", p->bottom[j], kept[src.layer]->name ? kept[src.layer]->name : "",
                                     src.top, next_split[slot]++);
        }
      }
      for (size_t j = 0; j < p->n_top; j++) {
        int slot = i * max_tops + (int)j;
        if (refs[slot] <= 1) continue;
        const char *lname = p->name ? p->name : "";
        char *split_name = cg_xprintf("%s_%s_%zu_split", p->top[j], lname, j);
        layer_spec *sp = &specs[count++];
        sp->synthesized = make_split_param(split_name, p->top[j], refs[slot], top_loss[slot]);
        sp->param = sp->synthesized;
        sp->num_bottoms = 1;
        sp->bottoms = dup_names(&p->top[j], 1);
        sp->num_tops = refs[slot];
        sp->tops = cg_xcalloc((size_t)refs[slot], sizeof(char *));
        for (int k = 0; k < refs[slot]; k++) sp->tops[k] = cg_xprintf("%s_%s_%zu_split_%d", p->top[j], lname, j, k);
        sp->synthesized->n_top = (size_t)refs[slot];
        sp->synthesized->top = dup_names(sp->tops, (size_t)refs[slot]);
        /* the split consumes the loss-weighted top, so the split's first top carries the weight */
        free(split_name);
      }
    }
  }
  for (int i = 0; i < n; i++) free(sources[i]);
  free(sources);
  free(refs);
  free(next_split);
  free(top_loss);
  free(known_names);
  free(known_at);
  *out = specs;
  *out_n = count;
  return rc;
}

static int find_blob(const cg_net *net, const char *name) {
  for (int i = net->num_blobs - 1; i >= 0; i--)
    if (strcmp(net->blobs[i]->name, name) == 0) return i;
  return -1;
}

static int add_blob(cg_net *net, const char *name) {
  cg_blob **grown = realloc(net->blobs, (size_t)(net->num_blobs + 1) * sizeof *grown);
  if (!grown) return -1;
  net->blobs = grown;
  net->blobs[net->num_blobs] = cg_blob_create(name);
  return net->blobs[net->num_blobs] ? net->num_blobs++ : -1;
}

static const char *src_name(const cg_net *net) { return net->opt.source_name ? net->opt.source_name : "net"; }

/* Resolves names, runs setup and reshape, records loss weights. */
static int build_layer(cg_net *net, int index, const layer_spec *s) {
  cg_net_layer *nl = &net->layers[index];
  const Caffe__LayerParameter *p = s->param;
  const char *lname = p->name ? p->name : "";
  nl->num_bottoms = s->num_bottoms;
  nl->num_tops = s->num_tops;
  nl->bottom_ids = cg_xcalloc((size_t)s->num_bottoms + 1, sizeof(int));
  nl->top_ids = cg_xcalloc((size_t)s->num_tops + 1, sizeof(int));
  nl->bottoms = cg_xcalloc((size_t)s->num_bottoms + 1, sizeof(cg_blob *));
  nl->tops = cg_xcalloc((size_t)s->num_tops + 1, sizeof(cg_blob *));
  nl->bottom_need_backward = cg_xcalloc((size_t)s->num_bottoms + 1, sizeof(bool));
  nl->loss_weights = cg_xcalloc((size_t)s->num_tops + 1, sizeof(float));
  for (int j = 0; j < s->num_bottoms; j++) {
    int id = find_blob(net, s->bottoms[j]);
    if (id < 0)
      return cg_error(CG_ERR_INVALID, "%s: layer '%s': unknown bottom blob '%s'", src_name(net), lname,
                      s->bottoms[j]);
    nl->bottom_ids[j] = id;
    nl->bottoms[j] = net->blobs[id];
  }
  for (int j = 0; j < s->num_tops; j++) {
    int id;
    if (j < s->num_bottoms && strcmp(s->tops[j], s->bottoms[j]) == 0) {
      id = nl->bottom_ids[j]; /* in place */
    } else {
      if (find_blob(net, s->tops[j]) >= 0)
        return cg_error(CG_ERR_INVALID, "%s: layer '%s': top blob '%s' is produced by more than one layer",
                        src_name(net), lname, s->tops[j]);
      id = add_blob(net, s->tops[j]);
      if (id < 0) return cg_error(CG_ERR_NOMEM, "out of memory");
    }
    nl->top_ids[j] = id;
    nl->tops[j] = net->blobs[id];
  }
  nl->layer.net = net;
  nl->layer.backend = net->backend;
  cg_rng_seed(&nl->layer.rng, net->opt.seed * 1000003u + (uint64_t)index + 1);
  int rc = cg_layer_init(&nl->layer, p, (cg_phase)net->opt.phase, nl->bottoms, s->num_bottoms, nl->tops,
                         s->num_tops);
  if (!rc) rc = nl->layer.ops->reshape(&nl->layer, nl->bottoms, nl->tops);
  if (rc) {
    if (strncmp(cg_error_message(), "layer '", 7) == 0) return cg_error_wrap(rc, "%s: ", src_name(net));
    return cg_error_wrap(rc, "%s: layer '%s' (%s): ", src_name(net), lname, p->type ? p->type : "?");
  }
  if (p->n_loss_weight && p->n_loss_weight != (size_t)s->num_tops)
    return cg_error(CG_ERR_INVALID, "%s: layer '%s': loss_weight must be given once per top blob (%zu for %d tops)",
                    src_name(net), lname, p->n_loss_weight, s->num_tops);
  for (int j = 0; j < s->num_tops; j++)
    nl->loss_weights[j] = p->n_loss_weight ? p->loss_weight[j] : (nl->layer.ops->is_loss && j == 0 ? 1.0f : 0.0f);
  return CG_OK;
}

/* Caffe's rules for which layers and bottoms get gradients. */
static void decide_backward(cg_net *net, const Caffe__NetParameter *param) {
  bool *blob_need = cg_xcalloc((size_t)net->num_blobs + 1, sizeof(bool));
  bool *under_loss = cg_xcalloc((size_t)net->num_blobs + 1, sizeof(bool));
  for (int i = 0; i < net->num_layers; i++) {
    cg_net_layer *nl = &net->layers[i];
    const Caffe__LayerParameter *p = nl->layer.param;
    bool need = false;
    for (int j = 0; j < nl->num_bottoms; j++) {
      bool propagate = p->n_propagate_down ? (size_t)j < p->n_propagate_down && p->propagate_down[j] : true;
      if (nl->layer.ops->no_backward_bottoms >> j & 1) propagate = false;
      nl->bottom_need_backward[j] = blob_need[nl->bottom_ids[j]] && propagate;
      need |= nl->bottom_need_backward[j];
    }
    for (int k = 0; k < nl->layer.num_params; k++) {
      float lr = (size_t)k < p->n_param && p->param[k]->has_lr_mult ? p->param[k]->lr_mult : 1.0f;
      need |= lr != 0;
    }
    nl->need_backward = need;
    if (need)
      for (int j = 0; j < nl->num_tops; j++) blob_need[nl->top_ids[j]] = true;
  }
  for (int i = net->num_layers - 1; i >= 0; i--) {
    cg_net_layer *nl = &net->layers[i];
    bool contributes = false;
    for (int j = 0; j < nl->num_tops; j++) contributes |= nl->loss_weights[j] != 0 || under_loss[nl->top_ids[j]];
    if (!contributes) nl->need_backward = false;
    if (contributes)
      for (int j = 0; j < nl->num_bottoms; j++) under_loss[nl->bottom_ids[j]] = true;
    if (!nl->need_backward)
      for (int j = 0; j < nl->num_bottoms; j++) nl->bottom_need_backward[j] = false;
  }
  if (param->force_backward)
    for (int i = 0; i < net->num_layers; i++) {
      cg_net_layer *nl = &net->layers[i];
      for (int j = 0; j < nl->num_bottoms; j++) {
        if (!(nl->layer.ops->no_backward_bottoms >> j & 1)) nl->bottom_need_backward[j] = true;
        nl->need_backward |= nl->bottom_need_backward[j];
      }
    }
  free(blob_need);
  free(under_loss);
}

/* Gives every learnable blob its place in the flat arrays (or its owner's, when shared) and fills owners. */
static int lay_out_params(cg_net *net) {
  int total = 0;
  for (int i = 0; i < net->num_layers; i++) total += net->layers[i].layer.num_params;
  net->learnable = cg_xcalloc((size_t)total + 1, sizeof *net->learnable);
  cg_blob **owner_of = cg_xcalloc((size_t)total + 1, sizeof *owner_of);
  const char **shared_names = cg_xcalloc((size_t)total + 1, sizeof *shared_names);
  cg_blob **shared_blobs = cg_xcalloc((size_t)total + 1, sizeof *shared_blobs);
  int num_shared = 0, n = 0, rc = CG_OK;
  size_t offset = 0;
  for (int i = 0; i < net->num_layers && !rc; i++) {
    cg_layer *l = &net->layers[i].layer;
    for (int k = 0; k < l->num_params; k++, n++) {
      const Caffe__ParamSpec *spec = (size_t)k < l->param->n_param ? l->param->param[k] : NULL;
      owner_of[n] = NULL;
      if (spec && spec->name && spec->name[0]) {
        for (int s = 0; s < num_shared; s++)
          if (strcmp(shared_names[s], spec->name) == 0) owner_of[n] = shared_blobs[s];
        if (owner_of[n]) {
          bool strict = !(spec->has_share_mode && spec->share_mode == CAFFE__PARAM_SPEC__DIM_CHECK_MODE__PERMISSIVE);
          bool ok = strict ? cg_blob_same_shape(owner_of[n], l->params[k]) : owner_of[n]->count == l->params[k]->count;
          if (!ok) {
            char a[128], b[128];
            rc = cg_error(CG_ERR_SHAPE, "%s: layer '%s': shared parameter '%s' has shape %s here but %s where first defined",
                          src_name(net), l->name, spec->name, cg_blob_shape_string(l->params[k], a, sizeof a),
                          cg_blob_shape_string(owner_of[n], b, sizeof b));
            break;
          }
          continue;
        }
        shared_names[num_shared] = spec->name;
        shared_blobs[num_shared++] = l->params[k];
      }
      cg_learnable *lp = &net->learnable[net->num_learnable++];
      lp->blob = l->params[k];
      lp->lr_mult = spec && spec->has_lr_mult ? spec->lr_mult : 1.0f;
      lp->decay_mult = spec && spec->has_decay_mult ? spec->decay_mult : 1.0f;
      lp->offset = offset;
      lp->first_layer = i;
      offset += l->params[k]->count;
    }
  }
  if (!rc) {
    net->param_count = offset;
    net->param_data = aligned_alloc(64, ((offset * sizeof(float) + 63) / 64) * 64 + 64);
    net->param_diff = aligned_alloc(64, ((offset * sizeof(float) + 63) / 64) * 64 + 64);
    if (!net->param_data || !net->param_diff) rc = cg_error(CG_ERR_NOMEM, "cannot allocate %zu parameters", offset);
  }
  if (!rc) {
    memset(net->param_diff, 0, offset * sizeof(float));
    offset = 0;
    for (int j = 0; j < net->num_learnable; j++) {
      cg_blob *b = net->learnable[j].blob;
      b->data = net->param_data + offset;
      b->diff = net->param_diff + offset;
      b->capacity = b->count;
      offset += b->count;
    }
    n = 0;
    for (int i = 0; i < net->num_layers; i++) {
      cg_layer *l = &net->layers[i].layer;
      for (int k = 0; k < l->num_params; k++, n++) {
        if (owner_of[n]) {
          l->params[k]->data = owner_of[n]->data;
          l->params[k]->diff = owner_of[n]->diff;
          l->params[k]->capacity = l->params[k]->count;
          continue;
        }
        rc = cg_filler_fill(&l->fillers[k], l->params[k], &net->rng);
        if (rc) {
          rc = cg_error_wrap(rc, "%s: layer '%s': ", src_name(net), l->name);
          break;
        }
      }
    }
  }
  free(owner_of);
  free(shared_names);
  free(shared_blobs);
  return rc;
}

static void find_outputs(cg_net *net) {
  bool *consumed = cg_xcalloc((size_t)net->num_blobs + 1, sizeof(bool));
  bool *produced = cg_xcalloc((size_t)net->num_blobs + 1, sizeof(bool));
  /* a blob is an output when the last thing that happens to it is being produced */
  for (int i = 0; i < net->num_layers; i++) {
    cg_net_layer *nl = &net->layers[i];
    for (int j = 0; j < nl->num_bottoms; j++) consumed[nl->bottom_ids[j]] = true, produced[nl->bottom_ids[j]] = false;
    for (int j = 0; j < nl->num_tops; j++) produced[nl->top_ids[j]] = true;
  }
  net->output_ids = cg_xcalloc((size_t)net->num_blobs + 1, sizeof(int));
  for (int i = 0; i < net->num_blobs; i++)
    if (produced[i]) net->output_ids[net->num_outputs++] = i;
  free(consumed);
  free(produced);
}

int cg_net_create(const Caffe__NetParameter *param, const cg_net_options *opt, cg_net **out) {
  *out = NULL;
  cg_net *net = cg_xcalloc(1, sizeof *net);
  static const cg_net_options defaults = {.phase = 1, .world_size = 1};
  net->opt = opt ? *opt : defaults;
  if (net->opt.world_size < 1) net->opt.world_size = 1;
  net->opt.source_name = cg_xstrdup(net->opt.source_name ? net->opt.source_name : "net");
  net->opt.stages = NULL; /* only needed while filtering below */
  net->name = cg_xstrdup(param->name ? param->name : "");
  cg_rng_seed(&net->rng, net->opt.seed);
  net->opt.backend.name = NULL; /* borrowed; resolved once here */
  int backend_rc = cg_backend_select(opt ? &opt->backend : NULL, &net->backend);
  if (backend_rc) {
    backend_rc = cg_error_wrap(backend_rc, "%s: ", net->opt.source_name);
    cg_net_free(net);
    return backend_rc;
  }
  if (param->n_layers && !param->n_layer)
    return cg_net_free(net), cg_error(CG_ERR_INVALID, "%s: old-format 'layers' entries were not upgraded",
                                      opt && opt->source_name ? opt->source_name : "net");
  const Caffe__LayerParameter **kept = cg_xcalloc(param->n_layer + 1, sizeof *kept);
  int n = 0;
  cg_net_options filter = net->opt;
  if (opt) filter.stages = opt->stages, filter.num_stages = opt->num_stages;
  for (size_t i = 0; i < param->n_layer; i++)
    if (cg_net_layer_included(&filter, param->layer[i])) kept[n++] = param->layer[i];
  layer_spec *specs = NULL;
  int num_specs = 0;
  int rc = insert_splits(&net->opt, kept, n, &specs, &num_specs);
  free(kept);
  if (!rc) {
    net->layers = cg_xcalloc((size_t)num_specs + 1, sizeof *net->layers);
    for (int i = 0; i < num_specs && !rc; i++) {
      net->num_layers = i + 1;
      rc = build_layer(net, i, &specs[i]);
      net->layers[i].synthesized = specs[i].synthesized;
      specs[i].synthesized = NULL;
    }
  }
  free_specs(specs, num_specs);
  if (!rc) rc = lay_out_params(net);
  if (rc) {
    cg_net_free(net);
    return rc;
  }
  decide_backward(net, param);
  find_outputs(net);
  *out = net;
  return CG_OK;
}

int cg_net_create_from_file(const char *path, const cg_net_options *opt, cg_net **out) {
  Caffe__NetParameter *param = NULL;
  *out = NULL;
  int rc = cg_read_net_text(path, &param);
  if (rc) return rc;
  cg_net_options o = opt ? *opt : (cg_net_options){.phase = 1, .world_size = 1};
  if (!o.source_name) o.source_name = path;
  rc = cg_net_create(param, &o, out);
  if (rc) {
    protobuf_c_message_free_unpacked(&param->base, NULL);
    return rc;
  }
  (*out)->owned_param = param;
  return CG_OK;
}
