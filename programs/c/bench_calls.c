// bench_calls KIND N: makes N calls of one kind and prints how long they took, measured from
// inside the process with clock_time_get(CLOCK_MONOTONIC) (for bench/):
//   clock    N × WASI clock_time_get(MONOTONIC): the cheapest host call, answered at once
//   info     N × lshapes cluster_info: a request to the kernel's Scheduler and its reply
// Prints `bench_calls KIND N: TOTAL_NS ns, PER_CALL ns/call` (and the last answer of info).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>
#include "lshapes.h"

static uint64_t now_ns(void) {
  __wasi_timestamp_t t = 0;
  if (__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t) != 0) abort();
  return t;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "clock") != 0 && strcmp(argv[1], "info") != 0)) {
    fprintf(stderr, "usage: bench_calls clock|info N\n");
    return 2;
  }
  long n = strtol(argv[2], NULL, 10);
  if (n < 1) {
    fprintf(stderr, "bench_calls: N must be at least 1\n");
    return 2;
  }
  uint64_t sink = 0; // the clock calls' results, printed so they are kept
  uint32_t peers = 0, slots = 0;
  uint64_t t0 = now_ns();
  if (argv[1][0] == 'c') {
    for (long i = 0; i < n; i++) {
      __wasi_timestamp_t t = 0;
      if (__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t) != 0) abort();
      sink += t;
    }
  } else {
    for (long i = 0; i < n; i++) {
      int32_t e = lshapes_cluster_info(&peers, &slots);
      if (e != 0) {
        fprintf(stderr, "bench_calls: cluster_info: errno %d\n", (int)e);
        return 1;
      }
    }
  }
  uint64_t dt = now_ns() - t0;
  printf("bench_calls %s %ld: %llu ns, %.1f ns/call", argv[1], n, (unsigned long long)dt, (double)dt / (double)n);
  if (argv[1][0] == 'i') printf(" (peers %u, slots %u)", (unsigned)peers, (unsigned)slots);
  printf(sink == 42 ? " \n" : "\n");
  return 0;
}
