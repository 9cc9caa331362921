// oom: allocates (and touches) memory a MiB at a time until malloc fails, says how far it got on
// stderr, then aborts (a trap). Tests the executor's memory cap.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile last;

int main(void) {
  size_t mib = 0;
  for (;;) {
    char *p = malloc(1 << 20);
    if (!p) break;
    memset(p, 1, 1 << 20);
    last = p;
    mib++;
  }
  fprintf(stderr, "oom: malloc failed after %zu MiB\n", mib);
  abort();
}
