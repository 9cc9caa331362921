// busy: an endless loop (for preemption and kill tests). `busy N` prints a counter every N
// iterations; `busy` alone prints nothing.
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

int main(int argc, char **argv) {
  unsigned long every = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
  for (unsigned long i = 1;; i++) {
    sink = i;
    if (every && i % every == 0) {
      printf("%lu\n", i / every);
      fflush(stdout);
    }
  }
}
