// cpubench [ROUNDS]: a deterministic CPU-bound workload for the runtime benchmark (bench/).
// Each round runs the kinds of code real programs are made of, on data from a seeded PRNG:
//   sort    a merge sort of 64K records through a comparison function pointer (calls, memory)
//   hash    an open-addressing hash table of strings: inserts, lookups, counts (branches, bytes)
//   matrix  a 96x96 double matrix product (floating point, nested loops)
//   tree    a binary search tree built with malloc, walked recursively, then freed (recursion, heap)
//   crc     CRC-32 over a 1 MiB buffer, table-driven (table lookups, tight loop)
// and folds every result into a checksum. Prints `cpubench ROUNDS: checksum XXXXXXXXXXXXXXXX`;
// the same ROUNDS give the same checksum on every runtime.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rng(void) {
  // xorshift64*
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  return h;
}

// ───────────── sort ─────────────

struct rec {
  uint32_t key;
  uint32_t id;
  double weight;
};

typedef int (*cmp_fn)(const struct rec *, const struct rec *);

static int by_key(const struct rec *a, const struct rec *b) {
  if (a->key != b->key) return a->key < b->key ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

static int by_weight(const struct rec *a, const struct rec *b) {
  if (a->weight != b->weight) return a->weight < b->weight ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

static void merge_sort(struct rec *a, struct rec *tmp, size_t n, cmp_fn cmp) {
  if (n < 16) {
    for (size_t i = 1; i < n; i++) {
      struct rec x = a[i];
      size_t j = i;
      while (j > 0 && cmp(&x, &a[j - 1]) < 0) {
        a[j] = a[j - 1];
        j--;
      }
      a[j] = x;
    }
    return;
  }
  size_t h = n / 2;
  merge_sort(a, tmp, h, cmp);
  merge_sort(a + h, tmp, n - h, cmp);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = cmp(&a[j], &a[i]) < 0 ? a[j++] : a[i++];
  while (i < h) tmp[k++] = a[i++];
  while (j < n) tmp[k++] = a[j++];
  memcpy(a, tmp, n * sizeof *a);
}

#define SORT_N (64 * 1024)

static uint64_t bench_sort(void) {
  struct rec *a = malloc(SORT_N * sizeof *a);
  struct rec *tmp = malloc(SORT_N * sizeof *tmp);
  if (!a || !tmp) abort();
  for (uint32_t i = 0; i < SORT_N; i++) {
    uint64_t r = rng();
    a[i].key = (uint32_t)(r >> 40) & 0xFFFF;
    a[i].id = i;
    a[i].weight = (double)(r & 0xFFFFF) / 1024.0;
  }
  merge_sort(a, tmp, SORT_N, by_key);
  uint64_t h = 0;
  for (uint32_t i = 0; i < SORT_N; i += 97) h = mix(h, ((uint64_t)a[i].key << 32) | a[i].id);
  merge_sort(a, tmp, SORT_N, by_weight);
  for (uint32_t i = 0; i < SORT_N; i += 89) h = mix(h, a[i].id);
  free(a);
  free(tmp);
  return h;
}

// ───────────── hash table of strings ─────────────

#define HT_SIZE (1 << 16) // more than the words inserted: never full
#define HT_WORDS 20000

struct slot {
  char word[16];
  uint32_t count;
  uint32_t used;
};

static uint32_t fnv1a(const char *s) {
  uint32_t h = 2166136261u;
  while (*s) {
    h ^= (uint8_t)*s++;
    h *= 16777619u;
  }
  return h;
}

static struct slot *ht_find(struct slot *t, const char *w, int insert) {
  uint32_t i = fnv1a(w) & (HT_SIZE - 1);
  for (;;) {
    struct slot *s = &t[i];
    if (!s->used) {
      if (!insert) return NULL;
      s->used = 1;
      strcpy(s->word, w);
      return s;
    }
    if (strcmp(s->word, w) == 0) return s;
    i = (i + 1) & (HT_SIZE - 1);
  }
}

static void make_word(char *w, uint64_t r) {
  int len = 3 + (int)(r % 9);
  r /= 9;
  for (int i = 0; i < len; i++) {
    w[i] = (char)('a' + r % 13); // a small alphabet: many repeats
    r /= 13;
  }
  w[len] = 0;
}

static uint64_t bench_hash(void) {
  struct slot *t = calloc(HT_SIZE, sizeof *t);
  if (!t) abort();
  char w[16];
  for (int i = 0; i < HT_WORDS * 2; i++) {
    make_word(w, rng());
    ht_find(t, w, 1)->count++;
  }
  uint64_t h = 0, found = 0;
  for (int i = 0; i < HT_WORDS; i++) {
    make_word(w, rng());
    struct slot *s = ht_find(t, w, 0);
    if (s) {
      found++;
      h = mix(h, s->count);
    }
  }
  uint32_t distinct = 0;
  for (int i = 0; i < HT_SIZE; i++) distinct += t[i].used;
  free(t);
  return mix(mix(h, found), distinct);
}

// ───────────── matrix product ─────────────

#define MN 96

static uint64_t bench_matrix(void) {
  static double a[MN][MN], b[MN][MN], c[MN][MN];
  for (int i = 0; i < MN; i++)
    for (int j = 0; j < MN; j++) {
      a[i][j] = (double)(rng() % 1000) / 100.0 - 5.0;
      b[i][j] = (double)(rng() % 1000) / 100.0 - 5.0;
    }
  for (int i = 0; i < MN; i++)
    for (int j = 0; j < MN; j++) {
      double s = 0;
      for (int k = 0; k < MN; k++) s += a[i][k] * b[k][j];
      c[i][j] = s;
    }
  double tr = 0;
  for (int i = 0; i < MN; i++) tr += c[i][i] + c[i][MN - 1 - i];
  return (uint64_t)(int64_t)(tr * 1000.0);
}

// ───────────── binary search tree ─────────────

struct node {
  struct node *l, *r;
  uint32_t key;
};

static struct node *tree_insert(struct node *t, uint32_t key) {
  if (!t) {
    struct node *n = malloc(sizeof *n);
    if (!n) abort();
    n->l = n->r = NULL;
    n->key = key;
    return n;
  }
  if (key < t->key) t->l = tree_insert(t->l, key);
  else if (key > t->key) t->r = tree_insert(t->r, key);
  return t;
}

static uint64_t tree_walk(const struct node *t, uint32_t depth, uint64_t h) {
  if (!t) return h;
  h = tree_walk(t->l, depth + 1, h);
  h = mix(h, (uint64_t)t->key * depth);
  return tree_walk(t->r, depth + 1, h);
}

static void tree_free(struct node *t) {
  if (!t) return;
  tree_free(t->l);
  tree_free(t->r);
  free(t);
}

static uint64_t bench_tree(void) {
  struct node *t = NULL;
  for (int i = 0; i < 30000; i++) t = tree_insert(t, (uint32_t)(rng() >> 33));
  uint64_t h = tree_walk(t, 0, 0);
  tree_free(t);
  return h;
}

// ───────────── CRC-32 ─────────────

#define CRC_BYTES (1 << 20)

static uint32_t crc_table[256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static uint64_t bench_crc(void) {
  uint8_t *buf = malloc(CRC_BYTES);
  if (!buf) abort();
  for (size_t i = 0; i < CRC_BYTES; i += 8) {
    uint64_t r = rng();
    memcpy(buf + i, &r, 8);
  }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < CRC_BYTES; i++) c = crc_table[(c ^ buf[i]) & 0xFF] ^ (c >> 8);
  free(buf);
  return c ^ 0xFFFFFFFFu;
}

int main(int argc, char **argv) {
  long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 40;
  if (rounds < 1 || rounds > 100000) {
    fprintf(stderr, "usage: cpubench [ROUNDS]   (1..100000, default 40)\n");
    return 2;
  }
  rng_state = 0x853C49E6748FEA9BULL;
  crc_init();
  uint64_t h = 0;
  for (long r = 0; r < rounds; r++) {
    h = mix(h, bench_sort());
    h = mix(h, bench_hash());
    h = mix(h, bench_matrix());
    h = mix(h, bench_tree());
    h = mix(h, bench_crc());
  }
  printf("cpubench %ld: checksum %016llx\n", rounds, (unsigned long long)h);
  return 0;
}
