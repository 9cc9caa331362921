// counter: print a line once a second, N times (forever without N or with 0).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 0;
  struct timespec start, now, second = {1, 0};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 1; n == 0 || i <= n; i++) {
    nanosleep(&second, NULL);
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (long)(now.tv_sec - start.tv_sec);
    printf("tick %ld (%lds)\n", i, elapsed);
    fflush(stdout);
  }
  return 0;
}
