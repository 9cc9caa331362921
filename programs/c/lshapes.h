// The `lshapes` import module (docs/abi.md): process ids, spawn and wait, kill, ports and
// messages. Every function returns a WASI errno (0 = success) and blocks the program when it
// has to wait. The C names carry an `lshapes_` prefix (getpid, wait and kill are libc's).
#ifndef LSHAPES_H
#define LSHAPES_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LSHAPES_IMPORT(name) __attribute__((import_module("lshapes"), import_name(#name)))

/** This process's pid ("4f2a1c.3", no NUL); ENOBUFS if cap is too small (*len_out says how long). */
int32_t lshapes_getpid(char *buf, uint32_t cap, uint32_t *len_out) LSHAPES_IMPORT(getpid);
/** The id of the peer the process runs on now (32 hex chars), like lshapes_getpid. */
int32_t lshapes_peer_id(char *buf, uint32_t cap, uint32_t *len_out) LSHAPES_IMPORT(peer_id);
/** Peers in the cluster and execution slots in all of them. */
int32_t lshapes_cluster_info(uint32_t *peers_out, uint32_t *slots_out) LSHAPES_IMPORT(cluster_info);
/**
 * Starts `name` ("" = this program) with the arguments after argv[0] in `argv`, each ended by
 * a NUL (argv_len = all their bytes), on `peer` (a peer id or unique prefix; "" = anywhere).
 */
int32_t lshapes_spawn(const char *name, uint32_t name_len, const char *argv, uint32_t argv_len, const char *peer,
                      uint32_t peer_len, int32_t *handle_out) LSHAPES_IMPORT(spawn);
/** Waits for the child `handle` to exit (timeout_ms < 0: forever). */
int32_t lshapes_wait(int32_t handle, int32_t *code_out, int32_t timeout_ms) LSHAPES_IMPORT(wait);
/** Stops the process `handle` (exit code 137). */
int32_t lshapes_kill(int32_t handle) LSHAPES_IMPORT(kill);
/** Opens the port `name` (1-64 bytes, not starting with '#'); *port_out is its number for recv. */
int32_t lshapes_port_open(const char *name, uint32_t name_len, int32_t *port_out) LSHAPES_IMPORT(port_open);
/** Sends `data` (at most 1 MiB) to the port `port` of process `to`. */
int32_t lshapes_send(int32_t to, const char *port, uint32_t port_len, const void *data, uint32_t data_len)
    LSHAPES_IMPORT(send);
/**
 * Takes the oldest message of `port`: *len_out its length, *from_out a handle for its sender,
 * *token_out a reply token (non-zero when the sender waits in lshapes_call). ENOBUFS when it is
 * longer than cap (it stays queued), ETIMEDOUT after timeout_ms (< 0: forever, 0: poll).
 */
int32_t lshapes_recv(int32_t port, void *buf, uint32_t cap, uint32_t *len_out, int32_t *from_out, int32_t *token_out,
                     int32_t timeout_ms) LSHAPES_IMPORT(recv);
/** Sends with a reply token and waits for the reply (at most cap bytes copied, *len_out its length). */
int32_t lshapes_call(int32_t to, const char *port, uint32_t port_len, const void *data, uint32_t data_len, void *buf,
                     uint32_t cap, uint32_t *len_out, int32_t timeout_ms) LSHAPES_IMPORT(call);
/** Answers the call that delivered `token`. */
int32_t lshapes_reply(int32_t token, const void *data, uint32_t data_len) LSHAPES_IMPORT(reply);

/* ---- helpers for NUL-terminated strings ---- */

/** The handle of the parent process. */
#define LSHAPES_PARENT 0

static inline int32_t ls_port_open(const char *name, int32_t *port) {
  return lshapes_port_open(name, (uint32_t)strlen(name), port);
}

static inline int32_t ls_send(int32_t to, const char *port, const void *data, uint32_t len) {
  return lshapes_send(to, port, (uint32_t)strlen(port), data, len);
}

static inline int32_t ls_send_str(int32_t to, const char *port, const char *msg) {
  return ls_send(to, port, msg, (uint32_t)strlen(msg));
}

static inline int32_t ls_call_str(int32_t to, const char *port, const char *msg, void *buf, uint32_t cap,
                                  uint32_t *len_out, int32_t timeout_ms) {
  return lshapes_call(to, port, (uint32_t)strlen(port), msg, (uint32_t)strlen(msg), buf, cap, len_out, timeout_ms);
}

static inline int32_t ls_reply_str(int32_t token, const char *msg) {
  return lshapes_reply(token, msg, (uint32_t)strlen(msg));
}

/** Spawns `name` ("" = this program) with `argc` arguments (after argv[0]) on `peer` ("" = anywhere). */
static inline int32_t ls_spawn(const char *name, int argc, const char *const *args, const char *peer, int32_t *handle) {
  size_t n = 0;
  for (int i = 0; i < argc; i++) n += strlen(args[i]) + 1;
  char *block = malloc(n ? n : 1);
  if (!block) return 48; /* ENOMEM */
  size_t at = 0;
  for (int i = 0; i < argc; i++) {
    size_t l = strlen(args[i]) + 1;
    memcpy(block + at, args[i], l);
    at += l;
  }
  int32_t r = lshapes_spawn(name, (uint32_t)strlen(name), block, (uint32_t)n, peer, (uint32_t)strlen(peer), handle);
  free(block);
  return r;
}

#endif
