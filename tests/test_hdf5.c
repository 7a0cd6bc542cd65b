/* HDF5Data and HDF5Output against Caffe's own test files
 * ($SHARED_DATA/caffe_ref/hdf5_bvlc_test_data): the values Caffe's
 * test_hdf5data_layer.cpp expects (rows of 0..2399 in sample_data.h5, 2400..4799 in
 * its gzip twin, labels row+1 and row+2), solver_data.h5 against h5dump, shuffling,
 * resume, rank partitioning, double/integer datasets, errors naming file and
 * dataset, the HDF5Output round trip, and the "hdf5" data source. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/blob.h"
#include "caffegrid/error.h"
#include "check.h"
#include "core/layer.h"
#include "core/net_impl.h"
#include "data/hdf5_source.h"
#include "caffegrid/source.h"
#include "proto/text_format.h"

static char shared[1024], tmpdir[256];

static const char *ref(const char *name) {
  static char buf[4][1200];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/caffe_ref/hdf5_bvlc_test_data/%s", shared, name);
  return buf[k];
}

static const char *tmp(const char *name) {
  static char buf[4][600];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

/* Writes a list file `name` in tmpdir naming the given paths. */
static const char *list_file(const char *name, const char *const *paths, int n) {
  const char *p = tmp(name);
  FILE *fp = fopen(p, "w");
  for (int i = 0; i < n; i++) fprintf(fp, "%s\n", paths[i]);
  fclose(fp);
  return p;
}

enum { MAX_TOPS = 4 };

typedef struct harness {
  Caffe__LayerParameter *param;
  cg_layer layer;
  cg_blob *blobs[MAX_TOPS];
  int n;
} harness;

/* Builds a layer from prototxt text with n tops (or n bottoms of the given shapes when bottoms). */
static int build(harness *h, const char *text, int n, cg_net *net) {
  memset(h, 0, sizeof *h);
  ProtobufCMessage *msg = NULL;
  if (cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", &msg)) {
    fprintf(stderr, "cannot parse '%s': %s\n", text, cg_error_message());
    return CG_ERR_PARSE;
  }
  h->param = (Caffe__LayerParameter *)msg;
  h->n = n;
  for (int i = 0; i < n; i++) h->blobs[i] = cg_blob_create(NULL);
  int rc;
  if (net) { /* instantiate is for net-less layers: with a net, init and reshape by hand */
    h->layer.net = net;
    cg_rng_seed(&h->layer.rng, 7);
    rc = cg_layer_init(&h->layer, h->param, CG_TRAIN, NULL, 0, h->blobs, n);
    if (!rc) rc = h->layer.ops->reshape(&h->layer, NULL, h->blobs);
  } else {
    rc = cg_layer_instantiate(&h->layer, h->param, CG_TRAIN, NULL, 0, h->blobs, n, 7);
  }
  return rc;
}

static void destroy(harness *h) {
  cg_layer_destroy(&h->layer); /* also after a failed setup: it may have allocated state */
  for (int i = 0; i < h->n; i++) cg_blob_free(h->blobs[i]);
  protobuf_c_message_free_unpacked(&h->param->base, NULL);
}

static int forward(harness *h) {
  int rc = h->layer.ops->forward(&h->layer, NULL, h->blobs);
  CHECK_MSG(rc == 0, "forward: %s", cg_error_message());
  return rc;
}

static char *layer_text(const char *fmt, const char *arg) {
  static char buf[2048];
  snprintf(buf, sizeof buf, fmt, arg);
  return buf;
}

/* Caffe's TestRead: batch 5 over the two sample files, 10 forwards. */
static void test_caffe_read(void) {
  const char *paths[2] = {ref("sample_data.h5"), ref("sample_data_2_gzip.h5")};
  const char *list = list_file("sample_data_list.txt", paths, 2);
  harness h;
  int rc = build(&h,
                 layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"label\" top: \"label2\" "
                            "hdf5_data_param { source: \"%s\" batch_size: 5 }",
                            list),
                 3, NULL);
  CHECK_MSG(rc == 0, "setup: %s", cg_error_message());
  if (rc) {
    destroy(&h);
    return;
  }
  cg_blob *data = h.blobs[0], *label = h.blobs[1], *label2 = h.blobs[2];
  CHECK(data->num_axes == 4 && data->shape[0] == 5 && data->shape[1] == 8 && data->shape[2] == 6 &&
        data->shape[3] == 5);
  CHECK(label->num_axes == 2 && label->shape[0] == 5 && label->shape[1] == 1);
  CHECK(label2->num_axes == 2 && label2->shape[0] == 5 && label2->shape[1] == 1);
  const int data_size = 8 * 6 * 5;
  int wrong = 0;
  for (int iter = 0; iter < 10; iter++) {
    if (forward(&h)) break;
    int label_offset = 1 + (iter % 2 == 0 ? 0 : 5);
    int data_offset = iter % 2 == 0 ? 0 : 5 * data_size;
    int file_offset = iter % 4 < 2 ? 0 : 2400;
    for (int i = 0; i < 5; i++) {
      wrong += label->data[i] != (float)(label_offset + i);
      wrong += label2->data[i] != (float)(label_offset + 1 + i);
    }
    for (int idx = 0; idx < 5 * data_size; idx++) wrong += data->data[idx] != (float)(file_offset + data_offset + idx);
  }
  CHECK_EQ_INT(wrong, 0);
  CHECK_EQ_INT(h.layer.ops->get_position(&h.layer), 50);
  destroy(&h);
}

/* solver_data.h5 (data 8x3x10x10, targets 8x1) against h5dump's values. */
static void test_solver_data(void) {
  const char *paths[1] = {ref("solver_data.h5")};
  const char *list = list_file("solver_data_list.txt", paths, 1);
  harness h;
  int rc = build(&h,
                 layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"targets\" "
                            "hdf5_data_param { source: \"%s\" batch_size: 8 }",
                            list),
                 2, NULL);
  CHECK_MSG(rc == 0, "setup: %s", cg_error_message());
  if (!rc && !forward(&h)) {
    cg_blob *d = h.blobs[0], *t = h.blobs[1];
    CHECK(d->num_axes == 4 && d->shape[0] == 8 && d->shape[1] == 3 && d->shape[2] == 10 && d->shape[3] == 10);
    CHECK(t->num_axes == 2 && t->shape[0] == 8 && t->shape[1] == 1);
    const float targets[8] = {2.2617085f,   0.930155993f, -0.892310381f, 1.10767901f,
                              0.117759444f, -0.500591636f, 0.595117509f, 1.33786571f};
    for (int i = 0; i < 8; i++) CHECK_NEAR(t->data[i], targets[i], 1e-6);
    const float head[5] = {0.543600261f, -0.800064564f, -1.41991723f, 3.52958679f, -0.792674959f};
    for (int i = 0; i < 5; i++) CHECK_NEAR(d->data[i], head[i], 1e-6);
    const float tail[5] = {1.30692565f, -2.2605567f, -0.826612413f, 2.35685682f, 1.72015953f};
    for (int i = 0; i < 5; i++) CHECK_NEAR(d->data[2395 + i], tail[i], 1e-6);
    double sum = 0, abs_sum = 0;
    for (size_t i = 0; i < d->count; i++) sum += d->data[i], abs_sum += fabs(d->data[i]);
    CHECK_NEAR(sum, -19.4257067, 1e-3);
    CHECK_NEAR(abs_sum, 1929.48800544, 1e-3);
  }
  destroy(&h);
}

/* The row a sample file's data row came from: file * 10 + row, from its first value. */
static int row_id(const float *row) { return (int)row[0] / 240; }

/* Shuffled: each pass over the 20 rows gives each exactly once, rows and labels stay together,
 * the order differs from the file order, and a resumed layer continues identically. */
static void test_shuffle_and_resume(void) {
  const char *paths[2] = {ref("sample_data.h5"), ref("sample_data_2_gzip.h5")};
  const char *list = list_file("shuffle_list.txt", paths, 2);
  const char *text = layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"label\" "
                                "hdf5_data_param { source: \"%s\" batch_size: 10 shuffle: true }",
                                list);
  char saved[2048];
  snprintf(saved, sizeof saved, "%s", text);
  harness h;
  int rc = build(&h, saved, 2, NULL);
  CHECK_MSG(rc == 0, "setup: %s", cg_error_message());
  if (rc) {
    destroy(&h);
    return;
  }
  int order[80];
  int n = 0, mislabelled = 0;
  for (int iter = 0; iter < 8; iter++) {
    if (forward(&h)) break;
    for (int i = 0; i < 10; i++) {
      int id = row_id(h.blobs[0]->data + i * 240);
      order[n++] = id;
      mislabelled += h.blobs[1]->data[i] != (float)(id % 10 + 1);
    }
  }
  CHECK_EQ_INT(n, 80);
  CHECK_EQ_INT(mislabelled, 0);
  int in_order = 0;
  for (int pass = 0; pass < 4; pass++) {
    int seen[20] = {0};
    for (int i = 0; i < 20; i++) {
      int id = order[pass * 20 + i];
      if (id >= 0 && id < 20) seen[id]++;
      in_order += id == i;
    }
    int once = 0;
    for (int i = 0; i < 20; i++) once += seen[i] == 1;
    CHECK_MSG(once == 20, "pass %d: %d of 20 rows seen exactly once", pass, once);
    /* rows of one file come together, as in Caffe (files are read whole) */
    CHECK(order[pass * 20] / 10 == order[pass * 20 + 9] / 10 && order[pass * 20 + 10] / 10 == order[pass * 20 + 19] / 10);
  }
  CHECK_MSG(in_order < 40, "shuffle left %d of 80 rows in file order", in_order);
  bool passes_differ = memcmp(order, order + 20, 20 * sizeof(int)) != 0;
  CHECK(passes_differ);
  /* resume: a new layer set to position 30 continues as the first did from there */
  harness g;
  rc = build(&g, saved, 2, NULL);
  CHECK(rc == 0);
  if (!rc) {
    CHECK_EQ_INT(g.layer.ops->set_position(&g.layer, 30), 0);
    for (int iter = 0; iter < 3 && !forward(&g); iter++)
      for (int i = 0; i < 10; i++) CHECK_EQ_INT(row_id(g.blobs[0]->data + i * 240), order[30 + iter * 10 + i]);
    CHECK_EQ_INT(g.layer.ops->get_position(&g.layer), 60);
  }
  destroy(&g);
  destroy(&h);
}

/* Two ranks: rank 1 reads rows 1, 3, 5, ... of the stream. */
static void test_ranks(void) {
  const char *paths[2] = {ref("sample_data.h5"), ref("sample_data_2_gzip.h5")};
  const char *list = list_file("rank_list.txt", paths, 2);
  cg_net net;
  memset(&net, 0, sizeof net);
  net.opt.rank = 1;
  net.opt.world_size = 2;
  harness h;
  int rc = build(&h,
                 layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"label\" "
                            "hdf5_data_param { source: \"%s\" batch_size: 5 }",
                            list),
                 2, &net);
  CHECK_MSG(rc == 0, "setup: %s", cg_error_message());
  if (!rc) {
    for (int iter = 0; iter < 4 && !forward(&h); iter++)
      for (int i = 0; i < 5; i++) {
        int global = (iter * 5 + i) * 2 + 1; /* rows of the 20-row stream this rank keeps */
        CHECK_EQ_INT(row_id(h.blobs[0]->data + i * 240), global % 20);
      }
  }
  destroy(&h);
}

/* Double and integer datasets, rank 1 and rank 3, written with libhdf5 directly. */
static void test_types(void) {
  const char *p = tmp("types.h5");
  hid_t file = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  double d[3][2][2];
  int labels[3] = {7, -2, 40};
  float one[3] = {0.5f, 1.5f, 2.5f};
  for (int i = 0; i < 12; i++) (&d[0][0][0])[i] = i * 0.25 - 1;
  hsize_t dd[3] = {3, 2, 2}, dl[1] = {3};
  hid_t s = H5Screate_simple(3, dd, NULL);
  hid_t ds = H5Dcreate2(file, "data", H5T_IEEE_F64BE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, d);
  H5Dclose(ds);
  H5Sclose(s);
  s = H5Screate_simple(1, dl, NULL);
  ds = H5Dcreate2(file, "label", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
  H5Dclose(ds);
  ds = H5Dcreate2(file, "w", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, one);
  H5Dclose(ds);
  H5Sclose(s);
  /* a string dataset, and a scalar one: not numeric / no rows */
  hid_t str = H5Tcopy(H5T_C_S1);
  H5Tset_size(str, 4);
  s = H5Screate_simple(1, dl, NULL);
  ds = H5Dcreate2(file, "names", str, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, "abcdefghijkl");
  H5Dclose(ds);
  H5Sclose(s);
  H5Tclose(str);
  s = H5Screate(H5S_SCALAR);
  ds = H5Dcreate2(file, "scalar", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, one);
  H5Dclose(ds);
  H5Sclose(s);
  H5Fclose(file);

  const char *paths[1] = {p};
  const char *list = list_file("types_list.txt", paths, 1);
  harness h;
  int rc = build(&h,
                 layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"label\" top: \"w\" "
                            "hdf5_data_param { source: \"%s\" batch_size: 4 }",
                            list),
                 3, NULL);
  CHECK_MSG(rc == 0, "setup: %s", cg_error_message());
  if (!rc && !forward(&h)) {
    CHECK(h.blobs[0]->num_axes == 3 && h.blobs[0]->shape[0] == 4 && h.blobs[0]->shape[1] == 2 &&
          h.blobs[0]->shape[2] == 2);
    CHECK(h.blobs[1]->num_axes == 1 && h.blobs[1]->shape[0] == 4);
    for (int i = 0; i < 16; i++) CHECK_NEAR(h.blobs[0]->data[i], (i % 12) * 0.25 - 1, 0);
    const float expect_labels[4] = {7, -2, 40, 7}; /* the 4th row wraps to the first */
    for (int i = 0; i < 4; i++) CHECK_NEAR(h.blobs[1]->data[i], expect_labels[i], 0);
    CHECK_NEAR(h.blobs[2]->data[3], 0.5, 0);
  }
  destroy(&h);
  /* non-numeric and scalar datasets: named errors */
  rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"names\" hdf5_data_param { source: \"%s\" batch_size: 1 }", list),
             1, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "dataset 'names' is not numeric");
  destroy(&h);
  rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"scalar\" hdf5_data_param { source: \"%s\" batch_size: 1 }", list),
             1, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "dataset 'scalar' has rank 0");
  destroy(&h);
}

static int collect(const char *name, int num_axes, const unsigned long long *shape, const char *type, void *user) {
  char *out = user;
  size_t len = strlen(out);
  len += (size_t)snprintf(out + len, 1024 - len, "%s:%s:", name, type);
  for (int i = 0; i < num_axes; i++) len += (size_t)snprintf(out + len, 1024 - len, "%llu%s", shape[i], i + 1 < num_axes ? "x" : "");
  snprintf(out + len, 1024 - len, ";");
  return 0;
}

static void test_list_datasets(void) {
  char out[1024] = "";
  CHECK_EQ_INT(cg_hdf5_list(ref("sample_data_2_gzip.h5"), collect, out), 0);
  CHECK_MSG(strcmp(out, "data:float32:10x8x6x5;label:uint8:10x1;label2:uint8:10x1;") == 0, "listing %s", out);
  CHECK(cg_hdf5_is_file(ref("sample_data.h5")));
  CHECK(!cg_hdf5_is_file(ref("sample_data_list.txt")));
}

/* Errors: a missing file in the list, rows that disagree, an absent dataset, an empty list, transform_param. */
static void test_errors(void) {
  harness h;
  const char *missing[2] = {ref("sample_data.h5"), tmp("not_there.h5")};
  const char *list = list_file("missing_list.txt", missing, 2);
  int rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" hdf5_data_param { source: \"%s\" batch_size: 2 }", list), 1, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "not_there.h5");
  CHECK_STR_CONTAINS(cg_error_message(), "No such file");
  destroy(&h);

  /* data with 10 rows, label with 9 */
  cg_hdf5_writer *w;
  const char *bad = tmp("mismatch.h5");
  CHECK_EQ_INT(cg_hdf5_writer_open(bad, &w), 0);
  float v[20] = {0};
  int ds[2] = {10, 2}, ls[1] = {9};
  CHECK_EQ_INT(cg_hdf5_writer_append(w, "data", 2, ds, v), 0);
  CHECK_EQ_INT(cg_hdf5_writer_append(w, "label", 1, ls, v), 0);
  CHECK_EQ_INT(cg_hdf5_writer_close(w), 0);
  const char *one[1] = {bad};
  list = list_file("mismatch_list.txt", one, 1);
  rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"label\" hdf5_data_param { source: \"%s\" batch_size: 2 }", list), 2, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "mismatch.h5");
  CHECK_STR_CONTAINS(cg_error_message(), "dataset 'label' has 9 rows but dataset 'data' has 10");
  destroy(&h);

  rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"lable\" hdf5_data_param { source: \"%s\" batch_size: 2 }", list), 2, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "has no dataset 'lable'");
  destroy(&h);

  /* the second file's rows are shaped differently from the first's */
  const char *two[2] = {ref("sample_data.h5"), ref("solver_data.h5")};
  list = list_file("shapes_list.txt", two, 2);
  rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" hdf5_data_param { source: \"%s\" batch_size: 2 }", list), 1, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "solver_data.h5': rows of dataset 'data' are shaped differently");
  destroy(&h);

  list = list_file("empty_list.txt", NULL, 0);
  rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" hdf5_data_param { source: \"%s\" batch_size: 2 }", list), 1, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "names no files");
  destroy(&h);

  rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" transform_param { scale: 2 } hdf5_data_param { source: \"%s\" batch_size: 2 }", list), 1, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "does not transform data");
  destroy(&h);

  rc = build(&h, "name: \"h\" type: \"HDF5Data\" top: \"data\" hdf5_data_param { source: \"/nonexistent/list.txt\" batch_size: 2 }", 1, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "/nonexistent/list.txt");
  destroy(&h);

  /* a file that is not HDF5 at all */
  const char *junk[1] = {ref("sample_data_list.txt")};
  list = list_file("junk_list.txt", junk, 1);
  rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" hdf5_data_param { source: \"%s\" batch_size: 2 }", list), 1, NULL);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "sample_data_list.txt");
  destroy(&h);
}

/* HDF5Output writes its bottoms as "data" and "label"; two forwards append; HDF5Data reads them back. */
static void test_output_round_trip(void) {
  const char *out = tmp("output.h5");
  char text[1024];
  snprintf(text, sizeof text, "name: \"out\" type: \"HDF5Output\" bottom: \"data\" bottom: \"label\" "
                              "hdf5_output_param { file_name: \"%s\" }", out);
  ProtobufCMessage *msg = NULL;
  CHECK_EQ_INT(cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", &msg), 0);
  cg_blob *bottom[2] = {cg_blob_create("data"), cg_blob_create("label")};
  cg_blob_reshape4(bottom[0], 2, 3, 4, 5);
  int n2 = 2;
  cg_blob_reshape(bottom[1], 1, &n2);
  cg_layer l;
  memset(&l, 0, sizeof l);
  int rc = cg_layer_instantiate(&l, (Caffe__LayerParameter *)msg, CG_TEST, bottom, 2, NULL, 0, 7);
  CHECK_MSG(rc == 0, "setup: %s", cg_error_message());
  if (!rc) {
    for (int pass = 0; pass < 2; pass++) {
      for (int i = 0; i < 120; i++) bottom[0]->data[i] = (float)(pass * 1000 + i) * 0.5f;
      bottom[1]->data[0] = (float)(pass * 2), bottom[1]->data[1] = (float)(pass * 2 + 1);
      CHECK_EQ_INT(l.ops->forward(&l, bottom, NULL), 0);
    }
    cg_layer_destroy(&l);
    const char *names[2] = {"data", "label"};
    cg_hdf5_array a[2];
    rc = cg_hdf5_read(out, names, 2, true, a);
    CHECK_MSG(rc == 0, "read back: %s", cg_error_message());
    if (!rc) {
      CHECK(a[0].num_axes == 4 && a[0].shape[0] == 4 && a[0].shape[1] == 3 && a[0].shape[2] == 4 && a[0].shape[3] == 5);
      CHECK(a[1].num_axes == 1 && a[1].shape[0] == 4);
      int wrong = 0;
      for (int i = 0; i < 240; i++) wrong += a[0].data[i] != (float)((i / 120) * 1000 + i % 120) * 0.5f;
      CHECK_EQ_INT(wrong, 0);
      for (int i = 0; i < 4; i++) CHECK_NEAR(a[1].data[i], i, 0);
      cg_hdf5_array_free(&a[0]);
      cg_hdf5_array_free(&a[1]);
    }
    /* and through HDF5Data, as Caffe would read it */
    const char *paths[1] = {out};
    const char *list = list_file("output_list.txt", paths, 1);
    harness h;
    rc = build(&h, layer_text("name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"label\" hdf5_data_param { source: \"%s\" batch_size: 4 }", list), 2, NULL);
    CHECK_MSG(rc == 0, "HDF5Data over the output: %s", cg_error_message());
    if (!rc && !forward(&h)) {
      CHECK_NEAR(h.blobs[0]->data[239], (1000 + 119) * 0.5, 0);
      CHECK_NEAR(h.blobs[1]->data[3], 3, 0);
    }
    destroy(&h);
  }
  protobuf_c_message_free_unpacked(msg, NULL);
  cg_blob_free(bottom[0]);
  cg_blob_free(bottom[1]);
  /* an output path in a directory that does not exist */
  snprintf(text, sizeof text, "name: \"out\" type: \"HDF5Output\" bottom: \"data\" bottom: \"label\" "
                              "hdf5_output_param { file_name: \"/nonexistent/dir/out.h5\" }");
  cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", &msg);
  cg_blob *b2[2] = {cg_blob_create("data"), cg_blob_create("label")};
  memset(&l, 0, sizeof l);
  rc = cg_layer_instantiate(&l, (Caffe__LayerParameter *)msg, CG_TEST, b2, 2, NULL, 0, 7);
  CHECK(rc != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "/nonexistent/dir/out.h5");
  cg_layer_destroy(&l);
  protobuf_c_message_free_unpacked(msg, NULL);
  cg_blob_free(b2[0]);
  cg_blob_free(b2[1]);
}

/* The "hdf5" data source over the sample list and a single file. */
static void test_source(void) {
  const char *paths[2] = {ref("sample_data.h5"), ref("sample_data_2_gzip.h5")};
  const char *list = list_file("source_list.txt", paths, 2);
  cg_source *s;
  int rc = cg_source_open("hdf5", list, NULL, &s);
  CHECK_MSG(rc == 0, "open: %s", cg_error_message());
  if (!rc) {
    CHECK_EQ_INT(cg_source_count(s), 20);
    cg_record r;
    CHECK_EQ_INT(cg_source_get(s, 12, &r), 0);
    CHECK_EQ_INT(r.kind, CG_RECORD_FLOATS);
    CHECK(r.channels == 8 && r.height == 6 && r.width == 5 && r.num_floats == 240);
    CHECK_NEAR(r.floats[0], 2400 + 2 * 240, 0);
    CHECK_NEAR(r.floats[239], 2400 + 3 * 240 - 1, 0);
    CHECK(r.has_label && r.label == 3);
    CHECK_STR_CONTAINS(r.id, "sample_data_2_gzip.h5:2");
    CHECK_EQ_INT(cg_source_get(s, 3, &r), 0);
    CHECK(r.has_label && r.label == 4 && r.floats[0] == 3 * 240);
    cg_source_close(s);
  }
  cg_hdf5_source_options o = {.data_dataset = "data", .label_dataset = "label2"};
  rc = cg_source_open("hdf5", ref("sample_data.h5"), &o, &s);
  CHECK_MSG(rc == 0, "open: %s", cg_error_message());
  if (!rc) {
    CHECK_EQ_INT(cg_source_count(s), 10);
    cg_record r;
    CHECK_EQ_INT(cg_source_get(s, 9, &r), 0);
    CHECK(r.has_label && r.label == 11);
    cg_source_close(s);
  }
  /* solver_data has no "label": records without labels */
  rc = cg_source_open("hdf5", ref("solver_data.h5"), NULL, &s);
  CHECK(rc == 0);
  if (!rc) {
    cg_record r;
    CHECK_EQ_INT(cg_source_get(s, 7, &r), 0);
    CHECK(!r.has_label && r.channels == 3 && r.height == 10 && r.width == 10);
    CHECK_NEAR(r.floats[299], 1.72015953, 1e-6);
    cg_source_close(s);
  }
}

/* For tests/cli_data_b.sh: writes an HDF5 file whose "label" has 9 rows and "data" 10. */
static int write_mismatch(const char *path) {
  cg_hdf5_writer *w;
  float v[40] = {0};
  int ds[2] = {10, 4}, ls[1] = {9};
  int rc = cg_hdf5_writer_open(path, &w);
  if (!rc) rc = cg_hdf5_writer_append(w, "data", 2, ds, v);
  if (!rc) rc = cg_hdf5_writer_append(w, "label", 1, ls, v);
  if (!rc) rc = cg_hdf5_writer_close(w);
  if (rc) fprintf(stderr, "%s\n", cg_error_message());
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--write-mismatch") == 0) return write_mismatch(argv[2]);
  const char *env = getenv("SHARED_DATA");
  snprintf(shared, sizeof shared, "%s", env && env[0] ? env : "../shared/data");
  snprintf(tmpdir, sizeof tmpdir, "/tmp/cg_hdf5_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_caffe_read();
  test_solver_data();
  test_shuffle_and_resume();
  test_ranks();
  test_types();
  test_list_datasets();
  test_errors();
  test_output_round_trip();
  test_source();
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return CHECK_REPORT();
}
