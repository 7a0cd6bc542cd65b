/* Data sources, partitioning, image decoding, transforms, prefetching and the
 * Data/ImageData layers, against real files: the Caffe-made LMDBs and mean files
 * in $SHARED_DATA/caffe_ref, the 26 test images (pixels of the MNIST PNGs against
 * the MNIST idx file), the broken images in images/bad; and our `convert imageset`
 * and `compute_mean` ($CAFFEGRID) against what BVLC Caffe wrote. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "caffegrid/error.h"
#include "caffegrid/net.h"
#include "check.h"
#include "test_data.h"
#include "core/layer.h"
#include "data/data_feed.h"
#include "caffegrid/image.h"
#include "data/partition.h"
#include "caffegrid/prefetch.h"
#include "caffegrid/source.h"
#include "data/transform.h"
#include "proto/proto_io.h"
#include "proto/text_format.h"

static char shared[1024], tmpdir[] = "/tmp/cg_data_XXXXXX";
static const char *caffegrid;

static char *path_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path_of(const char *fmt, ...) {
  static char buf[8][2048];
  static int next;
  char *p = buf[next++ % 8];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p, sizeof buf[0], fmt, ap);
  va_end(ap);
  return p;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static Caffe__Datum *get_datum(cg_source *s, size_t i, char *key, size_t key_size) {
  cg_record r;
  if (cg_source_get(s, i, &r)) return NULL;
  if (key) snprintf(key, key_size, "%s", r.id);
  return caffe__datum__unpack(NULL, r.num_bytes, r.bytes);
}

/* ---- the Caffe-made LMDB ---- */

static const char *jnulzl(void) { return path_of("%s/caffe_ref/lmdb_jnulzl_32x32/test_lmdb", shared); }

static void test_lmdb_source(void) {
  NEED_DATA("caffe_ref/lmdb_jnulzl_32x32/test_lmdb/data.mdb");
  cg_source *s;
  int rc = cg_source_open("lmdb", jnulzl(), NULL, &s);
  CHECK_MSG(rc == 0, "open: %s", cg_error_message());
  if (rc) return;
  CHECK_EQ_INT(cg_source_count(s), 380);
  CHECK(strcmp(cg_source_type(s), "lmdb") == 0);
  int labels[2] = {0, 0}, others = 0, shapes_ok = 0, keys_ok = 0;
  char prev[256] = "";
  for (size_t i = 0; i < 380; i++) {
    char key[256];
    Caffe__Datum *d = get_datum(s, i, key, sizeof key);
    if (!d) {
      CHECK_MSG(0, "record %zu: %s", i, cg_error_message());
      continue;
    }
    if (d->label == 0 || d->label == 1)
      labels[d->label]++;
    else
      others++;
    shapes_ok += d->channels == 3 && d->height == 32 && d->width == 32 && d->data.len == 3072 && !d->encoded;
    char want[16];
    snprintf(want, sizeof want, "%08zu_", i);
    keys_ok += strncmp(key, want, 9) == 0 && strstr(key, ".png") && strcmp(prev, key) < 0;
    snprintf(prev, sizeof prev, "%s", key);
    protobuf_c_message_free_unpacked(&d->base, NULL);
  }
  CHECK_EQ_INT(labels[0], 55);
  CHECK_EQ_INT(labels[1], 325);
  CHECK_EQ_INT(others, 0);
  CHECK_EQ_INT(shapes_ok, 380);
  CHECK_EQ_INT(keys_ok, 380);
  /* random access gives the same record as in order, also from a clone */
  cg_source *c;
  CHECK_EQ_INT(cg_source_clone(s, &c), 0);
  char k1[256], k2[256];
  Caffe__Datum *a = get_datum(s, 217, k1, sizeof k1), *b = get_datum(c, 217, k2, sizeof k2);
  CHECK(a && b && strcmp(k1, k2) == 0 && a->data.len == b->data.len &&
        memcmp(a->data.data, b->data.data, a->data.len) == 0);
  if (a) protobuf_c_message_free_unpacked(&a->base, NULL);
  if (b) protobuf_c_message_free_unpacked(&b->base, NULL);
  cg_record r;
  CHECK(cg_source_get(s, 380, &r) != 0);
  cg_source_close(c);
  cg_source_close(s);

  /* lock.mdb is never touched: its bytes stay as committed */
  FILE *f = fopen(path_of("%s/lock.mdb", jnulzl()), "rb");
  unsigned char lock[8192];
  size_t got = f ? fread(lock, 1, sizeof lock, f) : 0;
  if (f) fclose(f);
  CHECK_EQ_INT(got, 8192);

  CHECK(cg_source_open("lmdb", path_of("%s/no_such_lmdb", tmpdir), NULL, &s) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "no_such_lmdb");
  CHECK(cg_source_open("leveldb", jnulzl(), NULL, &s) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "unknown data source type 'leveldb'");
}

static float *read_blob(const char *path, int *c, int *h, int *w) {
  ProtobufCMessage *m = NULL;
  if (cg_read_binary(&caffe__blob_proto__descriptor, path, &m)) return NULL;
  Caffe__BlobProto *bp = (Caffe__BlobProto *)m;
  *c = bp->channels, *h = bp->height, *w = bp->width;
  float *v = malloc(bp->n_data * sizeof(float));
  memcpy(v, bp->data, bp->n_data * sizeof(float));
  protobuf_c_message_free_unpacked(m, NULL);
  return v;
}

static void test_mean_file(void) {
  NEED_DATA("caffe_ref/lmdb_jnulzl_32x32/test_lmdb/data.mdb", "caffe_ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto");
  int c, h, w;
  float *caffe = read_blob(path_of("%s/caffe_ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto", shared), &c, &h, &w);
  CHECK(caffe != NULL);
  if (!caffe) return;
  CHECK(c == 3 && h == 32 && w == 32);
  /* our own sum through the source and the transform's loader */
  cg_source *s;
  if (cg_source_open("lmdb", jnulzl(), NULL, &s)) return;
  cg_transform t;
  cg_transform_init(&t, NULL, false);
  cg_pixels px = {0};
  double sum[3072] = {0};
  for (size_t i = 0; i < 380; i++) {
    cg_record r;
    if (cg_source_get(s, i, &r) || cg_transform_load(&t, &r, &px, "rec")) break;
    for (int k = 0; k < 3072; k++) sum[k] += px.img.data[k];
  }
  double worst = 0;
  for (int k = 0; k < 3072; k++) {
    double d = fabs(sum[k] / 380 - caffe[k]);
    if (d > worst) worst = d;
  }
  CHECK_MSG(worst < 1e-4, "mean of the LMDB vs Caffe's mean file: worst difference %g", worst);
  cg_pixels_free(&px);
  cg_source_close(s);
  /* the compute_mean command */
  char cmd[4096];
  const char *out = path_of("%s/mean.binaryproto", tmpdir);
  snprintf(cmd, sizeof cmd, "'%s' compute_mean '%s' '%s' 2>/dev/null", caffegrid, jnulzl(), out);
  CHECK_EQ_INT(system(cmd), 0);
  int c2 = 0, h2 = 0, w2 = 0;
  float *ours = read_blob(out, &c2, &h2, &w2);
  CHECK(ours && c2 == 3 && h2 == 32 && w2 == 32);
  int same = 0;
  for (int k = 0; ours && k < 3072; k++) same += ours[k] == caffe[k];
  CHECK_MSG(same == 3072, "compute_mean equals Caffe's file bit for bit at %d of 3072 values", same);
  free(ours);
  free(caffe);
}

/* ---- partition ---- */

static void test_partition(void) {
  const size_t sizes[] = {1, 7, 10, 13, 380};
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    size_t n = sizes[si];
    for (int world = 1; world <= 4; world++) {
      for (int shuffle = 0; shuffle < 2; shuffle++) {
        if (n < (size_t)world) {
          cg_partition p;
          CHECK(cg_partition_init(&p, n, 0, world, shuffle, 3) != 0);
          continue;
        }
        size_t per = n / (size_t)world, epochs = n + 2;
        int *seen = calloc(n, sizeof(int)), *ever = calloc(n, sizeof(int));
        int dup = 0, bad_count = 0, missing_when_even = 0;
        cg_partition parts[4];
        for (int r = 0; r < world; r++) cg_partition_init(&parts[r], n, r, world, shuffle, 99);
        for (size_t e = 0; e < epochs; e++) {
          memset(seen, 0, n * sizeof(int));
          for (int r = 0; r < world; r++) {
            bad_count += cg_partition_per_epoch(&parts[r]) != per;
            for (size_t j = 0; j < per; j++) {
              size_t idx = cg_partition_index(&parts[r], e * per + j);
              if (idx >= n || seen[idx]++) dup++;
              if (idx < n) ever[idx]++;
            }
          }
          if (n % (size_t)world == 0)
            for (size_t i = 0; i < n; i++) missing_when_even += seen[i] == 0;
        }
        size_t never = 0;
        for (size_t i = 0; i < n; i++) never += ever[i] == 0;
        CHECK_MSG(dup == 0, "N=%zu W=%d shuffle=%d: %d duplicates within an epoch", n, world, shuffle, dup);
        CHECK_MSG(bad_count == 0, "N=%zu W=%d: unequal per-rank counts", n, world);
        CHECK_MSG(missing_when_even == 0, "N=%zu W=%d: an epoch misses records although W divides N", n, world);
        CHECK_MSG(never == 0, "N=%zu W=%d shuffle=%d: %zu records never read over %zu epochs", n, world, shuffle, never,
                  epochs);
        for (int r = 0; r < world; r++) cg_partition_free(&parts[r]);
        free(seen);
        free(ever);
      }
    }
  }
  /* the left-over records rotate: N=10, W=4 drops 2 per epoch, a different 2 each time */
  cg_partition p[4];
  for (int r = 0; r < 4; r++) cg_partition_init(&p[r], 10, r, 4, false, 0);
  int dropped_first[2] = {-1, -1}, dropped_second[2] = {-1, -1};
  for (int e = 0; e < 2; e++) {
    int seen[10] = {0}, k = 0;
    for (int r = 0; r < 4; r++)
      for (int j = 0; j < 2; j++) seen[cg_partition_index(&p[r], (uint64_t)(e * 2 + j))]++;
    for (int i = 0; i < 10; i++)
      if (!seen[i] && k < 2) (e ? dropped_second : dropped_first)[k++] = i;
  }
  CHECK(dropped_first[0] == 8 && dropped_first[1] == 9);
  CHECK(dropped_second[0] == 0 && dropped_second[1] == 1);
  /* rank r without shuffling reads r, r+W, ... (strided shares mix a sorted database) */
  CHECK_EQ_INT(cg_partition_index(&p[1], 0), 1);
  CHECK_EQ_INT(cg_partition_index(&p[1], 1), 5);
  for (int r = 0; r < 4; r++) cg_partition_free(&p[r]);

  /* shuffling: same (seed, epoch) -> same order, on every machine (fixed golden values) */
  cg_partition a, b, c;
  cg_partition_init(&a, 10, 0, 1, true, 42);
  cg_partition_init(&b, 10, 0, 1, true, 42);
  cg_partition_init(&c, 10, 0, 1, true, 43);
  int same_seed = 1, epoch_differs = 0, seed_differs = 0;
  size_t order0[10];
  for (int j = 0; j < 10; j++) {
    order0[j] = cg_partition_index(&a, (uint64_t)j);
    same_seed &= order0[j] == cg_partition_index(&b, (uint64_t)j);
    seed_differs |= order0[j] != cg_partition_index(&c, (uint64_t)j);
  }
  for (int j = 0; j < 10; j++) epoch_differs |= order0[j] != cg_partition_index(&a, (uint64_t)(10 + j));
  CHECK(same_seed);
  CHECK(epoch_differs);
  CHECK(seed_differs);
  /* going back to epoch 0 after epoch 1 gives epoch 0's order again */
  CHECK_EQ_INT(cg_partition_index(&a, 3), order0[3]);
  static const size_t golden[10] = {3, 2, 5, 9, 1, 8, 4, 7, 0, 6};
  int golden_ok = 1;
  for (int j = 0; j < 10; j++) golden_ok &= order0[j] == golden[j];
  CHECK_MSG(golden_ok, "seed 42 epoch 0 order: %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu", order0[0], order0[1],
            order0[2], order0[3], order0[4], order0[5], order0[6], order0[7], order0[8], order0[9]);
  cg_partition_free(&a);
  cg_partition_free(&b);
  cg_partition_free(&c);
}

/* ---- image decoding ---- */

typedef struct image_case {
  const char *path;
  int height, width, native_channels;
} image_case;

static const image_case images[] = {
    {"bvlc/cat.jpg", 360, 480, 3},
    {"bvlc/cat_gray.jpg", 360, 480, 1},
    {"caffeonspark/cat1.jpg", 256, 256, 3},
    {"caffeonspark/cat2.jpg", 256, 256, 3},
    {"caffeonspark/dog1.jpg", 256, 256, 3},
    {"caffeonspark/dog2.jpg", 256, 256, 3},
    {"darknet/dog.jpg", 576, 768, 3},
    {"darknet/eagle.jpg", 512, 773, 3},
    {"darknet/horses.jpg", 512, 773, 3},
    {"darknet/person.jpg", 424, 640, 3},
    {"darknet/giraffe.jpg", 500, 500, 3},
    {"bigdl_imagenet/n04429376_694.JPEG", 500, 375, 3},
    {"bigdl_imagenet/n04429376_718.JPEG", 500, 402, 3},
    {"bigdl_imagenet/n04429376_762.JPEG", 120, 160, 3},
    {"bvlc/fish-bike.jpg", 323, 481, 3},
    {"darknet/scream.jpg", 448, 352, 3},
    {"bvlc/GitHub-Mark-64px.png", 64, 64, 3},
    {"bvlc/caffeine-icon.png", 32, 32, 3},
    {"jpeg_edge/jpg-progressive.jpg", 32, 32, 3},
    {"jpeg_edge/progressive3.jpg", 470, 650, 3},
    {"jpeg_edge/jpg-gray.jpg", 32, 32, 1},
    {"jpeg_edge/jpg-cmyk-1.jpg", 32, 32, 3},
    {"jpeg_edge/jpg-srgb-icc.jpg", 1, 1, 1},
    {"jpeg_edge/jpg-size-1x1.jpg", 1, 1, 3},
    {"jpeg_edge/jpg-size-33x33.jpg", 33, 33, 3},
    {"jpeg_edge/restarts.jpg", 33, 33, 3},
};

static double mean_abs_diff(const cg_image *a, const cg_image *b) {
  if (a->channels != b->channels || a->height != b->height || a->width != b->width) return 1e9;
  size_t n = (size_t)a->channels * a->height * a->width;
  double s = 0;
  for (size_t i = 0; i < n; i++) s += abs(a->data[i] - b->data[i]);
  return s / (double)n;
}

static void test_decode_images(void) {
  NEED_DATA("images/images_list.txt", "images/jpeg_edge", "images/bvlc/GitHub-Mark-64px.png");
  /* every image in images_list.txt, with the sizes the files declare */
  FILE *list = fopen(path_of("%s/images/images_list.txt", shared), "r");
  CHECK(list != NULL);
  int listed = 0, in_table = 0;
  char line[512];
  while (list && fgets(line, sizeof line, list)) {
    char *sp = strrchr(line, ' ');
    if (!sp) continue;
    *sp = '\0';
    listed++;
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) in_table += strcmp(images[i].path, line) == 0;
  }
  if (list) fclose(list);
  CHECK_EQ_INT(listed, 26);
  CHECK_EQ_INT(in_table, 26);
  cg_image img = {0}, color = {0}, gray = {0};
  for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) {
    const image_case *c = &images[i];
    const char *path = path_of("%s/images/%s", shared, c->path);
    int rc = cg_image_read_file(path, CG_COLOR_NATIVE, &img);
    CHECK_MSG(rc == 0, "%s: %s", c->path, cg_error_message());
    if (rc) continue;
    CHECK_MSG(img.channels == c->native_channels && img.height == c->height && img.width == c->width,
              "%s: decoded %dx%dx%d, expected %dx%dx%d", c->path, img.channels, img.height, img.width,
              c->native_channels, c->height, c->width);
    CHECK_EQ_INT(cg_image_read_file(path, CG_COLOR_BGR, &color), 0);
    CHECK(color.channels == 3 && color.height == c->height && color.width == c->width);
    CHECK_EQ_INT(cg_image_read_file(path, CG_COLOR_GRAY, &gray), 0);
    CHECK(gray.channels == 1 && gray.height == c->height && gray.width == c->width);
    size_t plane = (size_t)c->height * c->width;
    if (c->native_channels == 1) { /* grey forced to colour: three equal planes */
      CHECK(memcmp(color.data, color.data + plane, plane) == 0 &&
            memcmp(color.data, color.data + 2 * plane, plane) == 0);
      CHECK(memcmp(color.data, img.data, plane) == 0);
    } else if (plane > 100) { /* decoded grey ~ OpenCV's BGR2GRAY of the colour image */
      cg_image_convert(&color, CG_COLOR_GRAY);
      CHECK_MSG(mean_abs_diff(&color, &gray) < 1.5, "%s: grey decode differs from converted colour by %.2f", c->path,
                mean_abs_diff(&color, &gray));
    }
  }
  /* CMYK (Adobe, inverted) is the same picture as the RGB progressive one */
  cg_image cmyk = {0}, rgb = {0};
  CHECK_EQ_INT(cg_image_read_file(path_of("%s/images/jpeg_edge/jpg-cmyk-1.jpg", shared), CG_COLOR_BGR, &cmyk), 0);
  CHECK_EQ_INT(cg_image_read_file(path_of("%s/images/jpeg_edge/jpg-progressive.jpg", shared), CG_COLOR_BGR, &rgb), 0);
  CHECK_MSG(mean_abs_diff(&cmyk, &rgb) < 2, "CMYK vs RGB version: mean difference %.2f", mean_abs_diff(&cmyk, &rgb));
  /* restart markers and odd sizes decode to the same picture as the plain 33x33 file */
  cg_image r33 = {0}, s33 = {0};
  CHECK_EQ_INT(cg_image_read_file(path_of("%s/images/jpeg_edge/restarts.jpg", shared), CG_COLOR_BGR, &r33), 0);
  CHECK_EQ_INT(cg_image_read_file(path_of("%s/images/jpeg_edge/jpg-size-33x33.jpg", shared), CG_COLOR_BGR, &s33), 0);
  CHECK_MSG(mean_abs_diff(&r33, &s33) < 3, "restarts vs plain 33x33: %.2f", mean_abs_diff(&r33, &s33));
  /* PNG with alpha: the alpha channel is dropped, the colour kept (the mark is black on white/transparent) */
  CHECK_EQ_INT(cg_image_read_file(path_of("%s/images/bvlc/GitHub-Mark-64px.png", shared), CG_COLOR_NATIVE, &img), 0);
  CHECK_EQ_INT(img.channels, 3);
  cg_image_free(&img), cg_image_free(&color), cg_image_free(&gray), cg_image_free(&cmyk), cg_image_free(&rgb);
  cg_image_free(&r33), cg_image_free(&s33);
}

/* The MNIST PNGs are MNIST t10k images 0-7, 9 and 10: every pixel and the label. */
static void test_mnist_png_pixels(void) {
  NEED_DATA("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz", "images/mnist_png");
  gzFile f = gzopen(path_of("%s/mnist/t10k-images-idx3-ubyte.gz", shared), "rb");
  gzFile lf = gzopen(path_of("%s/mnist/t10k-labels-idx1-ubyte.gz", shared), "rb");
  CHECK(f && lf);
  if (!f || !lf) return;
  static unsigned char idx[16 + 11 * 784], lab[8 + 11];
  CHECK_EQ_INT(gzread(f, idx, sizeof idx), (int)sizeof idx);
  CHECK_EQ_INT(gzread(lf, lab, sizeof lab), (int)sizeof lab);
  gzclose(f);
  gzclose(lf);
  const int which[10] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10};
  cg_image img = {0};
  int exact = 0;
  for (int i = 0; i < 10; i++) {
    int n = which[i], label = lab[8 + n];
    const char *path = path_of("%s/images/mnist_png/img_%d_%d.png", shared, label, n);
    if (cg_image_read_file(path, CG_COLOR_NATIVE, &img)) {
      CHECK_MSG(0, "%s: %s", path, cg_error_message());
      continue;
    }
    exact += img.channels == 1 && img.height == 28 && img.width == 28 && memcmp(img.data, idx + 16 + 784 * n, 784) == 0;
  }
  CHECK_EQ_INT(exact, 10);
  cg_image_free(&img);
}

/* A 16-bit RGBA PNG, written here with libpng: decoded to the high bytes, alpha dropped. */
static void test_png_16bit(void) {
  const char *path = path_of("%s/rgba16.png", tmpdir);
  FILE *f = fopen(path, "wb");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, 2, 1, 16, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  /* big-endian samples R G B A for two pixels */
  unsigned char row[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x00, 0x00,
                           0xff, 0xff, 0x01, 0x02, 0x80, 0x7f, 0xff, 0xff};
  png_write_row(png, row);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  fclose(f);
  cg_image img = {0};
  int rc = cg_image_read_file(path, CG_COLOR_NATIVE, &img);
  CHECK_MSG(rc == 0, "%s", cg_error_message());
  if (!rc) {
    CHECK(img.channels == 3 && img.height == 1 && img.width == 2);
    /* planes B, G, R; pixel 0 = (R 0x12, G 0x56, B 0x9a), pixel 1 = (R 0xff, G 0x01, B 0x80) */
    const unsigned char want[6] = {0x9a, 0x80, 0x56, 0x01, 0x12, 0xff};
    CHECK(memcmp(img.data, want, 6) == 0);
  }
  cg_image_free(&img);
}

static void test_bad_images(void) {
  NEED_DATA("images/bad");
  DIR *d = opendir(path_of("%s/images/bad", shared));
  CHECK(d != NULL);
  int count = 0;
  cg_image img = {0};
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    count++;
    const char *path = path_of("%s/images/bad/%s", shared, e->d_name);
    int rc = cg_image_read_file(path, CG_COLOR_BGR, &img);
    CHECK_MSG(rc != 0, "%s decoded without an error", e->d_name);
    CHECK_STR_CONTAINS(cg_error_message(), e->d_name);
  }
  if (d) closedir(d);
  CHECK_EQ_INT(count, 4);
  uint8_t junk[] = {'G', 'I', 'F', '8', '9', 'a'};
  CHECK(cg_image_decode(junk, sizeof junk, CG_COLOR_BGR, "x.gif", &img) == CG_ERR_UNSUPPORTED);
  CHECK_STR_CONTAINS(cg_error_message(), "x.gif");
  cg_image_free(&img);
}

static void test_resize(void) {
  cg_image src = {0}, dst = {0};
  /* a constant image stays constant at any size */
  cg_image_reserve(&src, 3, 7, 5);
  memset(src.data, 77, 3 * 7 * 5);
  CHECK_EQ_INT(cg_image_resize(&src, 13, 3, &dst), 0);
  int all = 1;
  for (int i = 0; i < 3 * 13 * 3; i++) all &= dst.data[i] == 77;
  CHECK(all && dst.channels == 3 && dst.height == 13 && dst.width == 3);
  /* exactly half in both directions: 2x2 box averages, rounded */
  cg_image_reserve(&src, 1, 2, 4);
  const uint8_t px[8] = {0, 1, 10, 20, 2, 2, 30, 41};
  memcpy(src.data, px, 8);
  CHECK_EQ_INT(cg_image_resize(&src, 1, 2, &dst), 0);
  CHECK(dst.data[0] == 1 && dst.data[1] == 25); /* (0+1+2+2+2)>>2, (10+20+30+41+2)>>2 */
  /* upscaling 1x2 -> 1x4 with centred pixels: 0,255 -> weights 1, .75/.25, .25/.75, 1 */
  cg_image_reserve(&src, 1, 1, 2);
  src.data[0] = 0, src.data[1] = 200;
  CHECK_EQ_INT(cg_image_resize(&src, 1, 4, &dst), 0);
  CHECK(dst.data[0] == 0 && dst.data[1] == 50 && dst.data[2] == 150 && dst.data[3] == 200);
  cg_image_free(&src);
  cg_image_free(&dst);
}

/* Our `convert imageset` of the source images = Caffe's convert_imageset LMDB, per pixel
 * within resize rounding (Caffe: OpenCV imread + cv::resize to 256x256). */
static void test_convert_imageset_matches_caffe(void) {
  NEED_DATA("caffe_ref/convert_imageset_sujack1");
  const char *dir = path_of("%s/caffe_ref/convert_imageset_sujack1", shared);
  const char *ours_path = path_of("%s/imageset_lmdb", tmpdir);
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "'%s' convert imageset '%s/test_raw_img/' '%s/test_files.txt' '%s' --resize_height=256 "
           "--resize_width=256 2>/dev/null",
           caffegrid, dir, dir, ours_path);
  CHECK_EQ_INT(system(cmd), 0);
  cg_source *ours, *caffe;
  if (cg_source_open("lmdb", ours_path, NULL, &ours)) {
    CHECK_MSG(0, "%s", cg_error_message());
    return;
  }
  if (cg_source_open("lmdb", path_of("%s/test_lmdb", dir), NULL, &caffe)) {
    CHECK_MSG(0, "%s", cg_error_message());
    cg_source_close(ours);
    return;
  }
  CHECK_EQ_INT(cg_source_count(ours), 8);
  CHECK_EQ_INT(cg_source_count(caffe), 8);
  size_t differing = 0, total = 0;
  int worst = 0, records_ok = 0;
  for (size_t i = 0; i < 8; i++) {
    char ka[256], kb[256];
    Caffe__Datum *a = get_datum(ours, i, ka, sizeof ka), *b = get_datum(caffe, i, kb, sizeof kb);
    if (!a || !b) continue;
    records_ok += strcmp(ka, kb) == 0 && a->label == b->label && a->channels == 3 && b->channels == 3 &&
                  a->height == 256 && b->height == 256 && a->width == 256 && b->width == 256 &&
                  a->data.len == b->data.len && !a->encoded;
    for (size_t k = 0; k < a->data.len && k < b->data.len; k++) {
      int d = abs(a->data.data[k] - b->data.data[k]);
      differing += d != 0;
      if (d > worst) worst = d;
    }
    total += a->data.len;
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
  }
  CHECK_EQ_INT(records_ok, 8);
  CHECK_MSG(worst <= 1, "largest pixel difference from Caffe's LMDB: %d", worst);
  CHECK_MSG(differing * 1000 < total, "%zu of %zu pixels differ from Caffe's (by 1)", differing, total);
  printf("convert imageset vs Caffe: %zu of %zu pixel values differ, by at most %d\n", differing, total, worst);
  cg_source_close(ours);
  cg_source_close(caffe);
  /* and our compute_mean of it is Caffe's test_mean within that rounding (1/8 per differing pixel) */
  const char *mean_path = path_of("%s/imageset_mean", tmpdir);
  snprintf(cmd, sizeof cmd, "'%s' compute_mean '%s' '%s' 2>/dev/null", caffegrid, ours_path, mean_path);
  CHECK_EQ_INT(system(cmd), 0);
  int c1, h1, w1, c2, h2, w2;
  float *m1 = read_blob(mean_path, &c1, &h1, &w1), *m2 = read_blob(path_of("%s/test_mean", dir), &c2, &h2, &w2);
  CHECK(m1 && m2 && c1 == c2 && h1 == h2 && w1 == w2 && c1 == 3 && h1 == 256);
  double mworst = 0, msum = 0;
  for (size_t k = 0; m1 && m2 && k < 3 * 256 * 256; k++) {
    double d = fabs(m1[k] - m2[k]);
    msum += d;
    if (d > mworst) mworst = d;
  }
  /* each of the 8 images differs by at most 1 at a pixel, so the means by at most 1 */
  CHECK_MSG(mworst <= 1 && msum / (3 * 256 * 256) < 1e-3,
            "mean differs from Caffe's test_mean by up to %g, %g on average", mworst, msum / (3 * 256 * 256));
  free(m1);
  free(m2);
  /* --encoded stores each file's own bytes when no resize is needed */
  const char *enc_path = path_of("%s/imageset_encoded", tmpdir);
  snprintf(cmd, sizeof cmd, "'%s' convert imageset '%s/test_raw_img/' '%s/test_files.txt' '%s' --encoded 2>/dev/null",
           caffegrid, dir, dir, enc_path);
  CHECK_EQ_INT(system(cmd), 0);
  cg_source *enc;
  if (cg_source_open("lmdb", enc_path, NULL, &enc) == 0) {
    Caffe__Datum *d = get_datum(enc, 1, NULL, 0);
    uint8_t *file = NULL;
    size_t len = 0;
    cg_read_file(path_of("%s/test_raw_img/c8.jpeg", dir), &file, &len);
    CHECK(d && d->encoded && d->label == 0 && d->data.len == len && memcmp(d->data.data, file, len) == 0);
    free(file);
    if (d) protobuf_c_message_free_unpacked(&d->base, NULL);
    cg_source_close(enc);
  } else {
    CHECK_MSG(0, "%s", cg_error_message());
  }
}

/* ---- transforms ---- */

static void test_transform(void) {
  NEED_DATA("images/mnist_png/img_2_1.png", "images/bvlc/fish-bike.jpg", "caffe_ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto", "caffe_ref/lmdb_jnulzl_32x32/test_lmdb/data.mdb");
  Caffe__TransformationParameter tp = CAFFE__TRANSFORMATION_PARAMETER__INIT;
  tp.crop_size = 2;
  tp.has_scale = 1, tp.scale = 0.5f;
  float mv[1] = {1};
  tp.n_mean_value = 1, tp.mean_value = mv;
  cg_transform t;
  CHECK_EQ_INT(cg_transform_init(&t, &tp, false), 0);
  const uint8_t px[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  cg_record r = {
      .kind = CG_RECORD_PIXELS, .id = "p", .bytes = px, .num_bytes = 12, .channels = 1, .height = 3, .width = 4};
  cg_pixels p = {0};
  float out[16];
  cg_rng rng;
  cg_rng_seed(&rng, 1);
  CHECK_EQ_INT(cg_transform_load(&t, &r, &p, "p"), 0);
  CHECK_EQ_INT(cg_transform_apply(&t, &p, out, &rng, "p"), 0);
  /* TEST: centre crop rows 0-1, columns 1-2 of 1 2 / 5 6, minus 1, times 0.5 */
  CHECK(out[0] == 0 && out[1] == 0.5f && out[2] == 2 && out[3] == 2.5f);
  /* TRAIN with mirror: every result is one of the 2 x 2 x 3 crops, and all of them occur */
  tp.mirror = 1;
  cg_transform tt;
  cg_transform_init(&tt, &tp, true);
  int seen[2][2][3] = {{{0}}}, unknown = 0;
  for (int s = 0; s < 400; s++) {
    cg_rng_seed(&rng, (uint64_t)s);
    cg_transform_apply(&tt, &p, out, &rng, "p");
    int found = 0;
    for (int m = 0; m < 2 && !found; m++)
      for (int y = 0; y < 2 && !found; y++)
        for (int x = 0; x < 3 && !found; x++) {
          int ok = 1;
          for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
              float v = ((float)px[(y + i) * 4 + x + (m ? 1 - j : j)] - 1) * 0.5f;
              ok &= out[i * 2 + j] == v;
            }
          if (ok) found = 1, seen[m][y][x]++;
        }
    unknown += !found;
  }
  int all = 1;
  for (int m = 0; m < 2; m++)
    for (int y = 0; y < 2; y++)
      for (int x = 0; x < 3; x++) all &= seen[m][y][x] > 0;
  CHECK_EQ_INT(unknown, 0);
  CHECK(all);
  cg_transform_free(&tt);
  cg_transform_free(&t);

  /* per-channel mean values over float records and float_data Datum */
  Caffe__TransformationParameter tp2 = CAFFE__TRANSFORMATION_PARAMETER__INIT;
  float mv2[2] = {1, 10};
  tp2.n_mean_value = 2, tp2.mean_value = mv2;
  cg_transform_init(&t, &tp2, false);
  const float fl[4] = {5, 6, 15, 16};
  cg_record fr = {
      .kind = CG_RECORD_FLOATS, .id = "f", .floats = fl, .num_floats = 4, .channels = 2, .height = 1, .width = 2};
  CHECK_EQ_INT(cg_transform_load(&t, &fr, &p, "f"), 0);
  CHECK_EQ_INT(cg_transform_apply(&t, &p, out, &rng, "f"), 0);
  CHECK(out[0] == 4 && out[1] == 5 && out[2] == 5 && out[3] == 6);
  Caffe__Datum d = CAFFE__DATUM__INIT;
  d.has_channels = d.has_height = d.has_width = d.has_label = 1;
  d.channels = 2, d.height = 1, d.width = 2, d.label = 3;
  d.n_float_data = 4, d.float_data = (float *)fl;
  uint8_t packed[256];
  size_t len = caffe__datum__pack(&d, packed);
  cg_record dr = {.kind = CG_RECORD_DATUM, .id = "d", .bytes = packed, .num_bytes = len};
  CHECK_EQ_INT(cg_transform_load(&t, &dr, &p, "d"), 0);
  CHECK_EQ_INT(cg_transform_apply(&t, &p, out, &rng, "d"), 0);
  CHECK(out[0] == 4 && out[3] == 6 && p.label == 3 && p.has_label);
  /* a Datum whose sizes disagree, and bytes that are no Datum */
  d.channels = 3;
  len = caffe__datum__pack(&d, packed);
  dr.num_bytes = len;
  CHECK(cg_transform_load(&t, &dr, &p, "'key7' in db") == CG_ERR_CORRUPT);
  CHECK_STR_CONTAINS(cg_error_message(), "'key7' in db");
  const uint8_t garbage[5] = {0xff, 0xff, 0xff, 0xff, 0xff};
  cg_record gr = {.kind = CG_RECORD_DATUM, .id = "g", .bytes = garbage, .num_bytes = 5};
  CHECK(cg_transform_load(&t, &gr, &p, "'key8' in db") == CG_ERR_CORRUPT);
  CHECK_STR_CONTAINS(cg_error_message(), "'key8' in db");
  cg_transform_free(&t);

  /* an encoded Datum decodes like the file; force_color / force_gray apply */
  uint8_t *file = NULL, *jpg = NULL;
  size_t flen = 0, jlen = 0;
  cg_read_file(path_of("%s/images/mnist_png/img_2_1.png", shared), &file, &flen);
  cg_read_file(path_of("%s/images/bvlc/fish-bike.jpg", shared), &jpg, &jlen);
  Caffe__Datum e = CAFFE__DATUM__INIT;
  e.has_encoded = e.encoded = 1, e.has_data = 1, e.has_label = 1, e.label = 2;
  e.data.data = file, e.data.len = flen;
  uint8_t *epacked = malloc(flen + jlen + 64);
  len = caffe__datum__pack(&e, epacked);
  cg_record er = {.kind = CG_RECORD_DATUM, .id = "e", .bytes = epacked, .num_bytes = len};
  Caffe__TransformationParameter tp3 = CAFFE__TRANSFORMATION_PARAMETER__INIT;
  cg_transform_init(&t, &tp3, false);
  cg_image direct = {0};
  cg_image_read_file(path_of("%s/images/mnist_png/img_2_1.png", shared), CG_COLOR_NATIVE, &direct);
  CHECK_EQ_INT(cg_transform_load(&t, &er, &p, "e"), 0);
  CHECK(p.channels == 1 && p.height == 28 && p.label == 2 && memcmp(p.img.data, direct.data, 784) == 0);
  tp3.force_color = 1;
  cg_transform tc;
  cg_transform_init(&tc, &tp3, false);
  CHECK_EQ_INT(cg_transform_load(&tc, &er, &p, "e"), 0);
  CHECK(p.channels == 3 && memcmp(p.img.data + 784 * 2, direct.data, 784) == 0);
  e.data.data = jpg, e.data.len = jlen;
  len = caffe__datum__pack(&e, epacked);
  er.num_bytes = len;
  tp3.force_color = 0, tp3.force_gray = 1;
  cg_transform tg;
  cg_transform_init(&tg, &tp3, false);
  CHECK_EQ_INT(cg_transform_load(&tg, &er, &p, "e"), 0);
  CHECK(p.channels == 1 && p.height == 323 && p.width == 481);
  /* raw colour pixels forced to grey use OpenCV's weights */
  const uint8_t bgr[3] = {10, 200, 50};
  cg_record pr = {
      .kind = CG_RECORD_PIXELS, .id = "q", .bytes = bgr, .num_bytes = 3, .channels = 3, .height = 1, .width = 1};
  CHECK_EQ_INT(cg_transform_load(&tg, &pr, &p, "q"), 0);
  CHECK(p.channels == 1 && p.img.data[0] == (uint8_t)((10 * 1868 + 200 * 9617 + 50 * 4899 + 8192) >> 14));
  tp3.force_color = 1;
  CHECK(cg_transform_init(&tc, &tp3, false) != 0); /* both forced */
  cg_transform_free(&tg);
  cg_transform_free(&tc);
  cg_transform_free(&t);
  free(epacked), free(file), free(jpg);
  cg_image_free(&direct);

  /* mean_file: (x - mean) * scale, elementwise */
  Caffe__TransformationParameter tp4 = CAFFE__TRANSFORMATION_PARAMETER__INIT;
  tp4.mean_file = path_of("%s/caffe_ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto", shared);
  tp4.has_scale = 1, tp4.scale = 0.25f;
  CHECK_EQ_INT(cg_transform_init(&t, &tp4, false), 0);
  cg_source *s;
  if (cg_source_open("lmdb", jnulzl(), NULL, &s) == 0) {
    cg_record rec;
    cg_source_get(s, 5, &rec);
    float *o = malloc(3072 * sizeof(float));
    CHECK_EQ_INT(cg_transform_load(&t, &rec, &p, "r5"), 0);
    CHECK_EQ_INT(cg_transform_apply(&t, &p, o, &rng, "r5"), 0);
    int ok = 0;
    for (int k = 0; k < 3072; k++) ok += o[k] == ((float)p.img.data[k] - t.mean[k]) * 0.25f;
    CHECK_EQ_INT(ok, 3072);
    free(o);
    cg_source_close(s);
  }
  tp4.mean_file = path_of("%s/no_such_mean.binaryproto", tmpdir);
  cg_transform_free(&t);
  CHECK(cg_transform_init(&t, &tp4, false) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "no_such_mean.binaryproto");
  cg_transform_free(&t);
  cg_pixels_free(&p);
}

/* ---- image lists ---- */

static void test_image_list(void) {
  NEED_DATA("images/bvlc/cat.jpg", "images/mnist_png", "images/jpeg_edge/jpg-size-1x1.jpg", "images/mnist_png_list.txt");
  const char *list = path_of("%s/list_spaces.txt", tmpdir);
  char text[4096];
  snprintf(text, sizeof text, "%s/images/bvlc/cat.jpg 3\n\n%s/images/mnist_png/img_7_0.png\t7\r\n", shared, shared);
  write_file(list, text);
  /* a path with spaces: the label is the last token */
  const char *spaced_dir = path_of("%s/dir with space", tmpdir);
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/images/jpeg_edge/jpg-size-1x1.jpg' '%s/one pixel.jpg'", spaced_dir,
           shared, spaced_dir);
  CHECK_EQ_INT(system(cmd), 0);
  FILE *f = fopen(list, "a");
  fprintf(f, "%s/one pixel.jpg 11\n", spaced_dir);
  fclose(f);
  cg_source *s;
  int rc = cg_source_open("image_list", list, NULL, &s);
  CHECK_MSG(rc == 0, "%s", cg_error_message());
  if (rc) return;
  CHECK_EQ_INT(cg_source_count(s), 3);
  cg_record r;
  CHECK_EQ_INT(cg_source_get(s, 2, &r), 0);
  CHECK(r.kind == CG_RECORD_IMAGE && r.label == 11 && r.has_label && strstr(r.id, "one pixel.jpg") &&
        r.num_bytes == 288);
  CHECK_EQ_INT(cg_source_get(s, 1, &r), 0);
  CHECK(r.label == 7 && r.num_bytes == 254);
  cg_source_close(s);
  /* root_folder is prefixed as written */
  cg_image_list_options o = {.root_folder = path_of("%s/images/", shared)};
  CHECK_EQ_INT(cg_source_open("image_list", path_of("%s/images/mnist_png_list.txt", shared), &o, &s), 0);
  CHECK_EQ_INT(cg_source_count(s), 10);
  CHECK_EQ_INT(cg_source_get(s, 0, &r), 0);
  CHECK(r.label == 7 && strstr(r.id, "images/mnist_png/img_7_0.png"));
  cg_source_close(s);
  /* a missing file names the file and the list line; a line without label names the line */
  snprintf(text, sizeof text, "%s/images/bvlc/cat.jpg 0\n%s/images/nope/missing.jpg 1\n", shared, shared);
  write_file(list, text);
  CHECK_EQ_INT(cg_source_open("image_list", list, NULL, &s), 0);
  CHECK(cg_source_get(s, 1, &r) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "missing.jpg");
  CHECK_STR_CONTAINS(cg_error_message(), "list_spaces.txt:2");
  cg_source_close(s);
  write_file(list, "a.jpg 1\nb.jpg\n");
  CHECK(cg_source_open("image_list", list, NULL, &s) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "list_spaces.txt:2");
  write_file(list, "a.jpg x1\n");
  CHECK(cg_source_open("image_list", list, NULL, &s) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "list_spaces.txt:1: the label 'x1'");
}

/* ---- prefetch ---- */

typedef struct batch_copy {
  float *data, *labels;
  size_t *indices;
  uint64_t position;
} batch_copy;

static int read_batches(const cg_prefetch_config *c, uint64_t start, int n, batch_copy *out, size_t item) {
  cg_prefetch *p;
  int rc = cg_prefetch_create(c, start, &p);
  if (rc) return rc;
  for (int i = 0; i < n && !rc; i++) {
    const cg_batch *b;
    rc = cg_prefetch_next(p, &b);
    if (rc) break;
    size_t bs = (size_t)c->batch_size;
    out[i].data = malloc(bs * item * sizeof(float));
    out[i].labels = malloc(bs * sizeof(float));
    out[i].indices = malloc(bs * sizeof(size_t));
    memcpy(out[i].data, b->data, bs * item * sizeof(float));
    memcpy(out[i].labels, b->labels, bs * sizeof(float));
    memcpy(out[i].indices, b->indices, bs * sizeof(size_t));
    out[i].position = b->position;
  }
  cg_prefetch_free(p);
  return rc;
}

static int same_batches(const batch_copy *a, const batch_copy *b, int n, int bs, size_t item) {
  for (int i = 0; i < n; i++)
    if (!a[i].data || !b[i].data || a[i].position != b[i].position ||
        memcmp(a[i].data, b[i].data, (size_t)bs * item * sizeof(float)) != 0 ||
        memcmp(a[i].labels, b[i].labels, (size_t)bs * sizeof(float)) != 0 ||
        memcmp(a[i].indices, b[i].indices, (size_t)bs * sizeof(size_t)) != 0)
      return 0;
  return 1;
}

static void free_batches(batch_copy *b, int n) {
  for (int i = 0; i < n; i++) free(b[i].data), free(b[i].labels), free(b[i].indices);
  memset(b, 0, sizeof *b * (size_t)n);
}

static void test_prefetch_deterministic(void) {
  NEED_DATA("caffe_ref/lmdb_jnulzl_32x32/test_lmdb/data.mdb");
  cg_source *s;
  if (cg_source_open("lmdb", jnulzl(), NULL, &s)) return;
  Caffe__TransformationParameter tp = CAFFE__TRANSFORMATION_PARAMETER__INIT;
  tp.crop_size = 28, tp.mirror = 1, tp.has_scale = 1, tp.scale = 1.0f / 255;
  cg_transform t;
  cg_transform_init(&t, &tp, true);
  enum { N = 30, BS = 16 };
  size_t item = 3 * 28 * 28;
  cg_prefetch_config c = {.source = s,
                          .transform = &t,
                          .batch_size = BS,
                          .channels = 3,
                          .height = 28,
                          .width = 28,
                          .rank = 1,
                          .world = 3,
                          .shuffle = true,
                          .seed = 5,
                          .threads = 0,
                          .depth = 1};
  static batch_copy sync[N], threaded[N], one[N], resumed[N];
  CHECK_EQ_INT(read_batches(&c, 0, N, sync, item), 0);
  c.threads = 2, c.depth = 3;
  CHECK_EQ_INT(read_batches(&c, 0, N, threaded, item), 0);
  c.threads = 1, c.depth = 4;
  CHECK_EQ_INT(read_batches(&c, 0, N, one, item), 0);
  CHECK_MSG(same_batches(sync, threaded, N, BS, item), "2 threads, depth 3 differ from synchronous reading");
  CHECK_MSG(same_batches(sync, one, N, BS, item), "1 thread, depth 4 differs from synchronous reading");
  /* 30 batches of 16 = 480 records > 126 per epoch: epochs reshuffle, rank 1 of 3 reads indices of its share */
  int labels_ok = 1, crops_vary = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < BS; j++) labels_ok &= sync[i].labels[j] == 0 || sync[i].labels[j] == 1;
  for (int i = 1; i < N; i++) crops_vary |= memcmp(sync[0].data, sync[i].data, item * sizeof(float)) != 0;
  CHECK(labels_ok && crops_vary);
  CHECK_EQ_INT(sync[5].position, 80);
  /* restarting at a saved position continues exactly */
  c.threads = 2, c.depth = 2;
  CHECK_EQ_INT(read_batches(&c, 80, N - 5, resumed, item), 0);
  CHECK_MSG(same_batches(sync + 5, resumed, N - 5, BS, item), "resumed at position 80 differs");
  free_batches(resumed, N);
  /* seek inside a live prefetcher */
  cg_prefetch *p;
  CHECK_EQ_INT(cg_prefetch_create(&c, 0, &p), 0);
  const cg_batch *b;
  for (int i = 0; i < 7; i++) cg_prefetch_next(p, &b);
  CHECK_EQ_INT(cg_prefetch_position(p), 7 * BS);
  CHECK_EQ_INT(cg_prefetch_seek(p, 3 * BS), 0);
  CHECK_EQ_INT(cg_prefetch_next(p, &b), 0);
  CHECK(b->position == 3 * BS && memcmp(b->data, sync[3].data, BS * item * sizeof(float)) == 0);
  cg_prefetch_stats st = cg_prefetch_get_stats(p);
  CHECK(st.batches == 8 && st.skipped == 0 && st.wait_seconds >= 0);
  cg_prefetch_free(p);
  /* a different seed gives different crops; another rank different records */
  c.seed = 6;
  CHECK_EQ_INT(read_batches(&c, 0, 1, resumed, item), 0);
  CHECK(memcmp(resumed[0].data, sync[0].data, BS * item * sizeof(float)) != 0);
  free_batches(resumed, N);
  free_batches(sync, N), free_batches(threaded, N), free_batches(one, N);
  cg_transform_free(&t);
  cg_source_close(s);
}

static void test_prefetch_errors(void) {
  NEED_DATA("images");
  const char *list = path_of("%s/bad_mix.txt", tmpdir);
  char text[4096];
  const char *im = path_of("%s/images", shared);
  snprintf(text, sizeof text,
           "%s/caffeonspark/cat1.jpg 0\n%s/caffeonspark/cat2.jpg 1\n%s/bad/cat_truncated.jpg 2\n"
           "%s/caffeonspark/dog1.jpg 3\n%s/nope.jpg 4\n%s/caffeonspark/dog2.jpg 5\n",
           im, im, im, im, im, im);
  write_file(list, text);
  cg_source *s;
  if (cg_source_open("image_list", list, NULL, &s)) return;
  cg_transform t;
  Caffe__TransformationParameter tp = CAFFE__TRANSFORMATION_PARAMETER__INIT;
  cg_transform_init(&t, &tp, false);
  t.color = CG_COLOR_BGR, t.resize_h = 32, t.resize_w = 32;
  size_t item = 3 * 32 * 32;
  cg_prefetch_config c = {.source = s,
                          .transform = &t,
                          .batch_size = 2,
                          .channels = 3,
                          .height = 32,
                          .width = 32,
                          .rank = 0,
                          .world = 1,
                          .threads = 2,
                          .depth = 2};
  cg_prefetch *p;
  CHECK_EQ_INT(cg_prefetch_create(&c, 0, &p), 0);
  const cg_batch *b;
  CHECK_EQ_INT(cg_prefetch_next(p, &b), 0);
  CHECK(b->labels[0] == 0 && b->labels[1] == 1);
  CHECK(cg_prefetch_next(p, &b) == CG_ERR_CORRUPT); /* from the background thread, with its message */
  CHECK_STR_CONTAINS(cg_error_message(), "cat_truncated.jpg");
  CHECK(cg_prefetch_next(p, &b) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "nope.jpg");
  CHECK_STR_CONTAINS(cg_error_message(), "bad_mix.txt:5");
  cg_prefetch_free(p);
  /* skipping: bad records counted and replaced by a good one of the same batch (a third
   * of them bad: allowed here, the limit is tested below) */
  c.skip_bad = true, c.batch_size = 3, c.max_bad_fraction = 1;
  CHECK_EQ_INT(cg_prefetch_create(&c, 0, &p), 0);
  CHECK_MSG(cg_prefetch_next(p, &b) == 0, "%s", cg_error_message());
  CHECK(b->skipped == 1 && b->labels[2] == 1 && b->indices[2] == 1 &&
        memcmp(b->data + 2 * item, b->data + item, item * sizeof(float)) == 0);
  CHECK_MSG(cg_prefetch_next(p, &b) == 0, "%s", cg_error_message());
  CHECK(b->skipped == 1 && b->labels[0] == 3 && b->labels[1] == 3 && b->labels[2] == 5);
  cg_prefetch_stats st = cg_prefetch_get_stats(p);
  CHECK_EQ_INT(st.skipped, 2);
  cg_prefetch_free(p);
  /* ...but not more than max_bad_fraction of them (default 0.1), judged over this rank's
   * share when it has fewer than 1,000 records: the second batch completes the share */
  c.max_bad_fraction = 0;
  CHECK_EQ_INT(cg_prefetch_create(&c, 0, &p), 0);
  CHECK_MSG(cg_prefetch_next(p, &b) == 0, "%s", cg_error_message());
  CHECK(cg_prefetch_next(p, &b) == CG_ERR_CORRUPT);
  CHECK_STR_CONTAINS(cg_error_message(), "2 of the 6 records read so far from");
  CHECK_STR_CONTAINS(cg_error_message(), "more than CAFFEGRID_MAX_BAD_FRACTION=0.1 allows");
  cg_prefetch_free(p);
  c.max_bad_fraction = 0.34;
  CHECK_EQ_INT(cg_prefetch_create(&c, 0, &p), 0);
  CHECK_MSG(cg_prefetch_next(p, &b) == 0, "%s", cg_error_message());
  CHECK_MSG(cg_prefetch_next(p, &b) == 0, "%s", cg_error_message());
  cg_prefetch_free(p);
  /* a batch with nothing good is still an error */
  cg_source_close(s);
  snprintf(text, sizeof text, "%s/bad/empty.jpg 0\n%s/bad/GitHub-Mark-64px_truncated.png 1\n", im, im);
  write_file(list, text);
  if (cg_source_open("image_list", list, NULL, &s)) return;
  c.source = s, c.batch_size = 2;
  CHECK_EQ_INT(cg_prefetch_create(&c, 0, &p), 0);
  CHECK(cg_prefetch_next(p, &b) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "every record");
  /* the last record's own message, once (it was formatted into itself before) */
  CHECK_STR_CONTAINS(cg_error_message(), "; the last: ");
  const char *last = strstr(cg_error_message(), "; the last: ");
  CHECK_MSG(last && strstr(last, "GitHub-Mark-64px_truncated.png") && !strstr(last + 1, "every record"), "%s",
            cg_error_message());
  cg_prefetch_free(p);
  cg_source_close(s);
  cg_transform_free(&t);
}

/* ---- the layers ---- */

typedef struct layer_harness {
  Caffe__LayerParameter *param;
  cg_layer layer;
  cg_blob *top[2];
} layer_harness;

static int build_layer(layer_harness *h, const char *text, cg_phase phase) {
  memset(h, 0, sizeof *h);
  ProtobufCMessage *msg = NULL;
  if (cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", &msg)) return CG_ERR_PARSE;
  h->param = (Caffe__LayerParameter *)msg;
  h->top[0] = cg_blob_create(NULL);
  h->top[1] = cg_blob_create(NULL);
  return cg_layer_instantiate(&h->layer, h->param, phase, NULL, 0, h->top, 2, 11);
}

static void free_layer(layer_harness *h) {
  cg_layer_destroy(&h->layer);
  cg_blob_free(h->top[0]);
  cg_blob_free(h->top[1]);
  if (h->param) protobuf_c_message_free_unpacked(&h->param->base, NULL);
}

static int layer_forward(layer_harness *h) {
  int rc = h->layer.ops->reshape(&h->layer, NULL, h->top);
  if (!rc) rc = h->layer.ops->forward(&h->layer, NULL, h->top);
  return rc;
}

static void test_image_data_layer(void) {
  NEED_DATA("images/mnist_png_list.txt", "images/images_list.txt");
  char text[4096];
  snprintf(text, sizeof text,
           "name: 'img' type: 'ImageData' image_data_param { source: '%s/images/mnist_png_list.txt' root_folder: "
           "'%s/images/' batch_size: 4 is_color: false } transform_param { scale: 0.00390625 }",
           shared, shared);
  layer_harness h;
  int rc = build_layer(&h, text, CG_TEST);
  CHECK_MSG(rc == 0, "ImageData: %s", cg_error_message());
  if (!rc) {
    CHECK(h.top[0]->num_axes == 4 && h.top[0]->shape[0] == 4 && h.top[0]->shape[1] == 1 && h.top[0]->shape[2] == 28 &&
          h.top[0]->shape[3] == 28 && h.top[1]->count == 4);
    /* list order: labels 7 2 1 0 | 4 1 4 9 | 9 0 7 2 (wraps) */
    const float want[12] = {7, 2, 1, 0, 4, 1, 4, 9, 9, 0, 7, 2};
    float got[12], first[4 * 784];
    for (int i = 0; i < 3; i++) {
      CHECK_EQ_INT(layer_forward(&h), 0);
      memcpy(got + 4 * i, h.top[1]->data, 4 * sizeof(float));
      if (i == 0) memcpy(first, h.top[0]->data, sizeof first);
    }
    CHECK(memcmp(got, want, sizeof want) == 0);
    cg_image img = {0};
    cg_image_read_file(path_of("%s/images/mnist_png/img_7_0.png", shared), CG_COLOR_GRAY, &img);
    int ok = 0;
    for (int k = 0; k < 784; k++) ok += first[k] == img.data[k] * 0.00390625f;
    CHECK_EQ_INT(ok, 784);
    cg_image_free(&img);
    /* positions for resume: 12 read; back to 4 gives the second batch again */
    CHECK_EQ_INT(h.layer.ops->get_position(&h.layer), 12);
    CHECK_EQ_INT(h.layer.ops->set_position(&h.layer, 4), 0);
    CHECK_EQ_INT(layer_forward(&h), 0);
    CHECK(memcmp(h.top[1]->data, want + 4, 4 * sizeof(float)) == 0);
    CHECK(h.layer.ops->data_wait_seconds && h.layer.ops->data_wait_seconds(&h.layer) >= 0);
  }
  free_layer(&h);
  /* colour, resized, shuffled and cropped */
  snprintf(text, sizeof text,
           "name: 'img' type: 'ImageData' image_data_param { source: '%s/images/images_list.txt' root_folder: "
           "'%s/images/' batch_size: 5 new_height: 40 new_width: 30 shuffle: true } transform_param { crop_size: 24 "
           "mirror: true }",
           shared, shared);
  rc = build_layer(&h, text, CG_TRAIN);
  CHECK_MSG(rc == 0, "ImageData: %s", cg_error_message());
  if (!rc) {
    CHECK(h.top[0]->shape[0] == 5 && h.top[0]->shape[1] == 3 && h.top[0]->shape[2] == 24 && h.top[0]->shape[3] == 24);
    float labels[30];
    int ok = 1;
    for (int i = 0; i < 6; i++) {
      ok &= layer_forward(&h) == 0;
      memcpy(labels + 5 * i, h.top[1]->data, 5 * sizeof(float));
    }
    CHECK(ok);
    int ordered = 1; /* the first 26 would be 0 0 0 0 1 1 ... if not shuffled */
    const float list_order[5] = {0, 0, 0, 0, 1};
    for (int i = 0; i < 5; i++) ordered &= labels[i] == list_order[i];
    CHECK(!ordered);
  }
  free_layer(&h);
  snprintf(text, sizeof text,
           "type: 'ImageData' image_data_param { source: '%s/images/mnist_png_list.txt' new_height: 5 }", shared);
  CHECK(build_layer(&h, text, CG_TEST) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "new_height and new_width");
  free_layer(&h);
  /* a list naming a missing file fails at that record, naming file and line */
  const char *list = path_of("%s/missing_list.txt", tmpdir);
  write_file(list, "mnist_png/img_7_0.png 7\nmnist_png/gone.png 1\n");
  snprintf(text, sizeof text,
           "type: 'ImageData' image_data_param { source: '%s' root_folder: '%s/images/' batch_size: 2 }", list, shared);
  rc = build_layer(&h, text, CG_TEST);
  CHECK_EQ_INT(rc, 0);
  if (!rc) {
    CHECK(layer_forward(&h) != 0);
    CHECK_STR_CONTAINS(cg_error_message(), "gone.png");
    CHECK_STR_CONTAINS(cg_error_message(), "missing_list.txt:2");
  }
  free_layer(&h);
}

static void test_data_layer(void) {
  NEED_DATA("caffe_ref/lmdb_jnulzl_32x32/test_lmdb/data.mdb", "caffe_ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto");
  char text[4096];
  snprintf(text, sizeof text,
           "name: 'd' type: 'Data' data_param { source: '%s' batch_size: 50 backend: LMDB } transform_param { "
           "mean_file: '%s/caffe_ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto' }",
           jnulzl(), shared);
  layer_harness h;
  int rc = build_layer(&h, text, CG_TEST);
  CHECK_MSG(rc == 0, "Data: %s", cg_error_message());
  if (!rc) {
    int counts[2] = {0, 0};
    double total = 0;
    for (int i = 0; i < 76; i++) { /* 3800 records = 10 epochs */
      if (layer_forward(&h)) break;
      for (int j = 0; j < 50; j++) counts[h.top[1]->data[j] != 0]++;
      for (size_t k = 0; k < h.top[0]->count; k++) total += h.top[0]->data[k];
    }
    CHECK_EQ_INT(counts[0], 550);
    CHECK_EQ_INT(counts[1], 3250);
    /* ten epochs minus ten times the mean: the mean-subtracted sum is ~0 */
    CHECK_MSG(fabs(total / 3800 / 3072) < 1e-3, "average of mean-subtracted data %g", total / 3800 / 3072);
    CHECK_EQ_INT(h.layer.ops->get_position(&h.layer), 3800);
  }
  free_layer(&h);
  /* ranks: rank 1 of 2 in a net reads records 1, 3, 5, ... */
  const char *net_path = path_of("%s/data_net.prototxt", tmpdir);
  snprintf(
      text, sizeof text,
      "name: 'n' layer { name: 'd' type: 'Data' top: 'data' top: 'label' data_param { source: '%s' batch_size: 190 "
      "backend: LMDB } }",
      jnulzl());
  write_file(net_path, text);
  cg_source *s;
  float expect[190];
  if (cg_source_open("lmdb", jnulzl(), NULL, &s) == 0) {
    for (int j = 0; j < 190; j++) {
      Caffe__Datum *d = get_datum(s, (size_t)(2 * j + 1), NULL, 0);
      expect[j] = d ? (float)d->label : -1;
      if (d) protobuf_c_message_free_unpacked(&d->base, NULL);
    }
    cg_source_close(s);
  }
  cg_net_options o = {.phase = 1, .seed = 3, .rank = 1, .world_size = 2};
  cg_net *net = NULL;
  rc = cg_net_create_from_file(net_path, &o, &net);
  CHECK_MSG(rc == 0, "net: %s", cg_error_message());
  if (!rc) {
    CHECK_EQ_INT(cg_net_forward(net, NULL), 0);
    cg_blob *label = cg_net_blob(net, "label");
    CHECK(label && label->count == 190 && memcmp(label->data, expect, sizeof expect) == 0);
  }
  cg_net_free(net);
  /* a missing LMDB names it */
  snprintf(text, sizeof text, "type: 'Data' data_param { source: '%s/gone_lmdb' batch_size: 2 backend: LMDB }", tmpdir);
  CHECK(build_layer(&h, text, CG_TEST) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "gone_lmdb");
  free_layer(&h);
}

int main(void) {
  const char *sd = getenv("SHARED_DATA");
  snprintf(shared, sizeof shared, "%s", sd && sd[0] ? sd : "../shared/data");
  caffegrid = getenv("CAFFEGRID");
  if (!caffegrid || !caffegrid[0]) caffegrid = "build/caffegrid";
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_lmdb_source();
  test_mean_file();
  test_partition();
  test_decode_images();
  test_mnist_png_pixels();
  test_png_16bit();
  test_bad_images();
  test_resize();
  test_convert_imageset_matches_caffe();
  test_transform();
  test_image_list();
  test_prefetch_deterministic();
  test_prefetch_errors();
  test_image_data_layer();
  test_data_layer();
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return CHECK_REPORT();
}
