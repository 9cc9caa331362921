// badptr: prints a line, then passes fd_write an iovec pointer outside its memory. With the
// WASI library default it gets EFAULT and says so; the LSHAPES executor ends it with 139.
#include <stdint.h>
#include <stdio.h>

int32_t raw_fd_write(int32_t fd, int32_t iovs, int32_t iovs_len, int32_t nwritten)
    __attribute__((import_module("wasi_snapshot_preview1"), import_name("fd_write")));

int main(void) {
  printf("before\n");
  fflush(stdout);
  int32_t n = 0;
  int32_t r = raw_fd_write(1, (int32_t)0xFFFFFFF0u, 1, (int32_t)(uintptr_t)&n);
  printf("after: errno %d\n", (int)r);
  return 3;
}
