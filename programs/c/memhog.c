// memhog: a thread of a chosen size, for the fork and migration benchmarks. `memhog KIB [ROUNDS]`
// fills KIB KiB of heap with pseudo-random bytes (incompressible: the worst case for shipping an
// image), then walks it round after round, printing "round N sum S" after each; with ROUNDS it
// exits after that many rounds, otherwise it runs until killed. The output depends only on the
// arguments, so a moved or restored run must print exactly what an unmoved one does.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  size_t kib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
  unsigned long rounds = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
  size_t n = kib * 1024 / sizeof(uint32_t);
  uint32_t *heap = n ? malloc(n * sizeof(uint32_t)) : NULL;
  if (n && !heap) {
    fprintf(stderr, "memhog: cannot allocate %zu KiB\n", kib);
    return 1;
  }
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5; // xorshift32
    heap[i] = x;
  }
  uint32_t sum = 0;
  for (unsigned long r = 1; rounds == 0 || r <= rounds; r++) {
    // Each round touches every word (and changes a few), so the whole heap stays live.
    for (size_t i = 0; i < n; i++) sum = sum * 31u + heap[i];
    if (n) heap[r % n] ^= sum;
    for (volatile unsigned long spin = 0; spin < 2000000; spin++) {
    }
    printf("round %lu sum %08x\n", r, sum);
    fflush(stdout);
  }
  return 0;
}
