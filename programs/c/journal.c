// journal: a writer that computes between records and waits for each to be acknowledged — the
// shape Fork On Wait hides (docs/speculation.md). Deterministic output.
//
//   journal N WORK [PEER]     spawns `journal --replica N` (on PEER if given), then N times:
//                             computes a 4 KiB record (WORK rounds of a hash chain), calls the
//                             replica's port "rec" with it and checks the reply is "ok" (another
//                             reply is counted, reported on stderr, and it goes on); prints a
//                             line every 100 records; then calls the replica's port "digest" and
//                             prints its digest next to its own, sends "quit" and waits for it.
//   journal -c RUN N WORK [PEER]
//                             the same, but the replica's acknowledgement changes every RUN
//                             records ("ok 0" RUN times, then "ok 1"...): with RUN one more than
//                             the predictor's repeat threshold, every prediction of the reply is
//                             wrong (the bench's worst case); the writer checks each reply
//                             against the one expected, so the output stays the same.
//   journal --replica N [RUN] appends N records from "rec" to /tmp/journal, folding each into a
//                             running FNV-1a digest, answering "ok" (or "ok <k/RUN>"); then
//                             answers one "digest" call with the digest and the journal's size;
//                             exits on "quit".
//   journal -f FILE N WORK    writes the N records to FILE and fsyncs after each; prints the
//                             file's size and the digest.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lshapes.h"

#define RECORD 4096
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static const char *USAGE = "usage: journal N WORK [PEER] | journal -c RUN N WORK [PEER] | journal -f FILE N WORK | journal --replica N [RUN]";

/** The acknowledgement of record k (from 0): "ok", or "ok <k/run>" when replies change every run records. */
static int ack(char *out, size_t cap, uint32_t k, uint32_t run) {
  return run ? snprintf(out, cap, "ok %u", k / run) : snprintf(out, cap, "ok");
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= FNV_PRIME;
  }
  return h;
}

/** Record `k` after `work` rounds: each round hashes the record and refills it from the hash. */
static void make_record(uint8_t *rec, uint32_t k, uint32_t work) {
  uint64_t x = 0x9e3779b97f4a7c15ULL * (k + 1);
  for (int i = 0; i < RECORD; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rec[i] = (uint8_t)x;
  }
  for (uint32_t r = 0; r < work; r++) {
    uint64_t s = fnv(FNV_OFFSET, rec, RECORD) ^ r;
    for (int i = 0; i < RECORD; i++) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      rec[i] ^= (uint8_t)(s >> 24);
    }
  }
}

static uint32_t count(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 0 || v > 100000000) {
    fprintf(stderr, "journal: bad number '%s'\n%s\n", s, USAGE);
    exit(2);
  }
  return (uint32_t)v;
}

static int replica(uint32_t n, uint32_t run) {
  int32_t rec_port, digest_port, quit_port;
  if (ls_port_open("rec", &rec_port) || ls_port_open("digest", &digest_port) || ls_port_open("quit", &quit_port)) {
    fprintf(stderr, "journal --replica: cannot open its ports\n");
    return 1;
  }
  FILE *f = fopen("/tmp/journal", "w");
  if (!f) {
    fprintf(stderr, "journal --replica: /tmp/journal: %s\n", strerror(errno));
    return 1;
  }
  static uint8_t buf[RECORD];
  uint64_t digest = FNV_OFFSET;
  uint32_t len;
  int32_t from, token;
  for (uint32_t k = 0; k < n; k++) {
    int32_t e = lshapes_recv(rec_port, buf, sizeof buf, &len, &from, &token, -1);
    if (e) {
      fprintf(stderr, "journal --replica: recv: errno %d\n", e);
      return 1;
    }
    if (fwrite(buf, 1, len, f) != len) {
      fprintf(stderr, "journal --replica: write: %s\n", strerror(errno));
      return 1;
    }
    digest = fnv(digest, buf, len);
    char ok[32];
    ack(ok, sizeof ok, k, run);
    if (token) ls_reply_str(token, ok);
  }
  fflush(f);
  long size = ftell(f);
  fclose(f);
  int32_t e = lshapes_recv(digest_port, buf, sizeof buf, &len, &from, &token, -1);
  if (e) {
    fprintf(stderr, "journal --replica: recv digest: errno %d\n", e);
    return 1;
  }
  char answer[64];
  snprintf(answer, sizeof answer, "%016llx %ld", (unsigned long long)digest, size);
  if (token) ls_reply_str(token, answer);
  lshapes_recv(quit_port, buf, sizeof buf, &len, &from, &token, -1);
  return 0;
}

static int to_file(const char *path, uint32_t n, uint32_t work) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "journal: %s: %s\n", path, strerror(errno));
    return 1;
  }
  static uint8_t rec[RECORD];
  uint64_t digest = FNV_OFFSET;
  for (uint32_t k = 0; k < n; k++) {
    make_record(rec, k, work);
    if (write(fd, rec, RECORD) != RECORD) {
      fprintf(stderr, "journal: write %s: %s\n", path, strerror(errno));
      return 1;
    }
    if (fsync(fd) != 0) {
      fprintf(stderr, "journal: fsync %s: %s\n", path, strerror(errno));
      return 1;
    }
    digest = fnv(digest, rec, RECORD);
    if ((k + 1) % 100 == 0) printf("record %u synced\n", k + 1);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    fprintf(stderr, "journal: stat %s: %s\n", path, strerror(errno));
    return 1;
  }
  close(fd);
  printf("%s: %lld bytes, digest %016llx\n", path, (long long)st.st_size, (unsigned long long)digest);
  return 0;
}

static int writer(uint32_t n, uint32_t work, uint32_t run, const char *peer) {
  char nbuf[16], rbuf[16];
  snprintf(nbuf, sizeof nbuf, "%u", n);
  snprintf(rbuf, sizeof rbuf, "%u", run);
  const char *args[] = {"--replica", nbuf, rbuf};
  int32_t child;
  int32_t e = ls_spawn("", run ? 3 : 2, args, peer, &child);
  if (e) {
    fprintf(stderr, "journal: cannot start the replica: errno %d\n", e);
    return 1;
  }
  static uint8_t rec[RECORD];
  char reply[64];
  uint32_t len;
  uint64_t digest = FNV_OFFSET;
  uint32_t bad = 0;
  for (uint32_t k = 0; k < n; k++) {
    make_record(rec, k, work);
    e = lshapes_call(child, "rec", 3, rec, RECORD, reply, sizeof reply, &len, -1);
    if (e) {
      fprintf(stderr, "journal: record %u not acknowledged (errno %d)\n", k + 1, e);
      lshapes_kill(child);
      return 1;
    }
    char want[32];
    int wlen = ack(want, sizeof want, k, run);
    if (len != (uint32_t)wlen || memcmp(reply, want, len) != 0) {
      bad++;
      fprintf(stderr, "journal: record %u: unexpected reply\n", k + 1);
    }
    digest = fnv(digest, rec, RECORD);
    if ((k + 1) % 100 == 0) printf("record %u acknowledged\n", k + 1);
  }
  e = ls_call_str(child, "digest", "?", reply, sizeof reply - 1, &len, -1);
  if (e) {
    fprintf(stderr, "journal: no digest from the replica (errno %d)\n", e);
    return 1;
  }
  reply[len < sizeof reply ? len : sizeof reply - 1] = '\0';
  printf("writer  %016llx %lu, %u unexpected replies\n", (unsigned long long)digest, (unsigned long)n * RECORD, bad);
  printf("replica %s\n", reply);
  ls_send_str(child, "quit", "");
  int32_t code = -1;
  lshapes_wait(child, &code, -1);
  printf("replica exited %d\n", code);
  return code == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if ((argc == 3 || argc == 4) && strcmp(argv[1], "--replica") == 0) return replica(count(argv[2]), argc == 4 ? count(argv[3]) : 0);
  if (argc == 5 && strcmp(argv[1], "-f") == 0) return to_file(argv[2], count(argv[3]), count(argv[4]));
  if ((argc == 5 || argc == 6) && strcmp(argv[1], "-c") == 0) {
    uint32_t run = count(argv[2]);
    if (run == 0) {
      fprintf(stderr, "journal: -c needs a run of at least 1\n%s\n", USAGE);
      return 2;
    }
    return writer(count(argv[3]), count(argv[4]), run, argc == 6 ? argv[5] : "");
  }
  if (argc == 3 || argc == 4) return writer(count(argv[1]), count(argv[2]), 0, argc == 4 ? argv[3] : "");
  fprintf(stderr, "%s\n", USAGE);
  return 2;
}
