// waiter: a timed wait for a child (move it while it waits: the timeout keeps its deadline).
//
//   waiter CHILD_MS TIMEOUT_MS [PEER]   spawns a copy of itself that sleeps CHILD_MS and exits 7
//                                       (on PEER, a peer id or unique prefix; anywhere without),
//                                       waits for it at most TIMEOUT_MS and prints "timed out" or
//                                       "child exited N"; after a timeout it waits for it without
//                                       one and prints "child exited N".
//   waiter --child MS                   the child
#include "lshapes.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHILD_CODE 7

/** A non-negative decimal number below 2^31, or -1. */
static long number(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return *s && !*end && v >= 0 && v <= 0x7fffffffL ? v : -1;
}

static int child(long ms) {
  struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&d, NULL);
  return CHILD_CODE;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0 && number(argv[2]) >= 0) return child(number(argv[2]));
  if (argc < 3 || argc > 4 || number(argv[1]) < 0 || number(argv[2]) < 0) {
    fprintf(stderr, "usage: waiter CHILD_MS TIMEOUT_MS [PEER]\n");
    return 2;
  }
  const char *args[] = {"--child", argv[1]};
  int32_t kid = -1;
  int r = ls_spawn("", 2, args, argc > 3 ? argv[3] : "", &kid);
  if (r) {
    fprintf(stderr, "waiter: spawn failed: %s\n", strerror(r));
    return 1;
  }
  printf("waiting up to %s ms for a child of %s ms\n", argv[2], argv[1]);
  fflush(stdout);
  int32_t code = -1;
  r = lshapes_wait(kid, &code, (int32_t)number(argv[2]));
  if (r == ETIMEDOUT) {
    printf("timed out\n");
    fflush(stdout);
    r = lshapes_wait(kid, &code, -1);
  }
  if (r) {
    fprintf(stderr, "waiter: wait failed: %s\n", strerror(r));
    return 1;
  }
  printf("child exited %d\n", (int)code);
  return 0;
}
