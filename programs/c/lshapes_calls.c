// lshapes test: every function of the `lshapes` ABI (docs/abi.md), with its error paths. Run
// with no argument it is the parent: it prints one line per check (programs/expected/
// lshapes_calls.out) and spawns copies of itself in the roles below, which print nothing
// (they report to the parent by message; a failed check exits with 6+).
//
//   lshapes_calls child ARG   receives on "inbox", calls the parent, sends a long message,
//                             drains its "flood" port, answers two calls on "echo", exits 5
//   lshapes_calls sleeper     waits on a port forever (to be killed)
//   lshapes_calls mailbox     prints the first message of port "a" then what is on "b" and
//                             "c" (snapshot test)
//
// Expects (src/kernel/process/lshapes.test.ts): pid "aaaaaa.1", peer
// 0123456789abcdef0123456789abcdef, cluster_info 3 peers / 8 slots, no parent, the programs
// "garbage" (not WebAssembly) and none called "nosuch", timers for timeouts.
#include "lshapes.h"
#include "wtest.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R(label, expr) printf("%s: %s\n", (label), errname((int)(expr)))
#define BADP ((void *)(uintptr_t)0xFFFFFFF0u)
#define S(str) (str), (uint32_t)strlen(str)

static char buf[2048];
static uint32_t len;
static int32_t from, token;

static int recv_str(int32_t port, int32_t timeout) {
  int r = lshapes_recv(port, buf, sizeof buf - 1, &len, &from, &token, timeout);
  buf[r == 0 ? len : 0] = 0;
  return r;
}

// ------------------------------------------------------------------------------------------
// roles

static int child(const char *arg) {
  int32_t inbox, flood, echo;
  if (ls_port_open("inbox", &inbox)) return 6;
  if (recv_str(inbox, -1)) return 7;
  char msg[256];
  snprintf(msg, sizeof msg, "child got '%s' from handle %d, arg '%s'", buf, (int)from, arg);
  char answer[16] = {0};
  uint32_t n = 0;
  if (ls_call_str(LSHAPES_PARENT, "ctl", msg, answer, sizeof answer - 1, &n, -1)) return 8;
  if (n != 4 || memcmp(answer, "pong", 4) != 0) return 9;
  char big[300];
  memset(big, 'x', sizeof big);
  if (ls_send(LSHAPES_PARENT, "ctl", big, sizeof big)) return 10;
  // the parent floods "flood", then sends "go": all of the flood is here once "go" is
  if (recv_str(inbox, -1) || strcmp(buf, "go") != 0) return 11;
  if (ls_port_open("flood", &flood)) return 12;
  int count = 0, first = -1, last = -1;
  while (recv_str(flood, 0) == 0) {
    int v = atoi(buf);
    if (first < 0) first = v;
    last = v;
    count++;
  }
  snprintf(msg, sizeof msg, "flood: %d messages, first %d, last %d", count, first, last);
  if (ls_send_str(LSHAPES_PARENT, "ctl", msg)) return 13;
  if (ls_port_open("echo", &echo)) return 14;
  for (int i = 0; i < 2; i++) {
    if (recv_str(echo, -1) || token == 0) return 15;
    char out[64];
    snprintf(out, sizeof out, "ECHO: %s", buf);
    if (ls_reply_str(token, out)) return 16;
  }
  return 5;
}

static int sleeper(void) {
  int32_t port;
  if (ls_port_open("never", &port)) return 6;
  recv_str(port, -1);
  return 7;
}

static int mailbox(void) {
  int32_t a, b, c;
  ls_port_open("a", &a);
  ls_port_open("b", &b);
  int r = recv_str(a, -1);
  printf("a: %s \"%s\"\n", errname(r), r == 0 ? buf : "");
  r = recv_str(b, 0);
  printf("b: %s \"%s\"\n", errname(r), r == 0 ? buf : "");
  ls_port_open("c", &c);
  r = recv_str(c, 0);
  printf("c: %s \"%s\" token %s\n", errname(r), r == 0 ? buf : "", token ? "yes" : "no");
  if (token) ls_reply_str(token, "from the mailbox");
  return 0;
}

// ------------------------------------------------------------------------------------------
// the parent

static void identity(void) {
  printf("== identity\n");
  char id[64];
  uint32_t n = 0;
  int r = lshapes_getpid(id, sizeof id, &n);
  printf("getpid: %s \"%.*s\" len %u\n", errname(r), (int)n, id, (unsigned)n);
  n = 0;
  r = lshapes_getpid(id, 3, &n);
  printf("getpid cap 3: %s len %u\n", errname(r), (unsigned)n);
  R("getpid bad buf", lshapes_getpid(BADP, 64, &n));
  R("getpid bad len_out", lshapes_getpid(id, sizeof id, BADP));
  r = lshapes_peer_id(id, sizeof id, &n);
  printf("peer_id: %s \"%.*s\"\n", errname(r), (int)n, id);
  R("peer_id cap 0", lshapes_peer_id(id, 0, &n));
  uint32_t peers = 0, slots = 0;
  r = lshapes_cluster_info(&peers, &slots);
  printf("cluster_info: %s %u peers, %u slots\n", errname(r), (unsigned)peers, (unsigned)slots);
  R("cluster_info bad peers_out", lshapes_cluster_info(BADP, &slots));
  R("cluster_info bad slots_out", lshapes_cluster_info(&peers, BADP));
}

static void ports(void) {
  printf("== ports\n");
  int32_t p = -1;
  int r = ls_port_open("inbox", &p);
  printf("port_open inbox: %s %d\n", errname(r), (int)p);
  r = ls_port_open("ctl", &p);
  printf("port_open ctl: %s %d\n", errname(r), (int)p);
  r = ls_port_open("inbox", &p);
  printf("port_open inbox again: %s %d\n", errname(r), (int)p);
  R("port_open empty", lshapes_port_open("", 0, &p));
  R("port_open #x", ls_port_open("#x", &p));
  char name[70];
  memset(name, 'n', sizeof name);
  R("port_open 64 bytes", lshapes_port_open(name, 64, &p));
  R("port_open 65 bytes", lshapes_port_open(name, 65, &p));
  R("port_open not UTF-8", lshapes_port_open("\xff\xfe", 2, &p));
  R("port_open bad name", lshapes_port_open(BADP, 4, &p));
  R("port_open bad port_out", ls_port_open("inbox", BADP));
  R("recv unknown port", recv_str(99, 0));
  R("recv poll empty", recv_str(1, 0));
  R("recv 30 ms", recv_str(1, 30));
  R("recv bad len_out", lshapes_recv(1, buf, sizeof buf, BADP, &from, &token, 0));
  R("recv bad from_out", lshapes_recv(1, buf, sizeof buf, &len, BADP, &token, 0));
  R("recv bad buf", lshapes_recv(1, BADP, 64, &len, &from, &token, 0));
}

static void handles(void) {
  printf("== handles\n");
  int32_t code;
  R("send to parent (none)", ls_send_str(LSHAPES_PARENT, "inbox", "hi"));
  R("send to handle 42", ls_send_str(42, "inbox", "hi"));
  R("kill parent (none)", lshapes_kill(LSHAPES_PARENT));
  R("kill handle 42", lshapes_kill(42));
  R("wait parent", lshapes_wait(LSHAPES_PARENT, &code, -1));
  R("wait handle 42", lshapes_wait(42, &code, -1));
  R("call parent (none)", ls_call_str(LSHAPES_PARENT, "inbox", "hi", buf, 16, &len, -1));
  R("reply unknown token", ls_reply_str(12345, "hi"));
  R("reply token 0", ls_reply_str(0, "hi"));
}

static int32_t spawning(void) {
  printf("== spawn\n");
  int32_t h = -1;
  const char *args[] = {"child", "x y"};
  R("spawn nosuch", ls_spawn("nosuch", 0, NULL, "", &h));
  R("spawn garbage", ls_spawn("garbage", 0, NULL, "", &h));
  R("spawn on unknown peer", ls_spawn("", 2, args, "ffff", &h));
  R("spawn argv without final NUL", lshapes_spawn("", 0, "child", 5, "", 0, &h));
  R("spawn name not UTF-8", lshapes_spawn("\xc3", 1, "", 0, "", 0, &h));
  R("spawn bad name", lshapes_spawn(BADP, 3, "", 0, "", 0, &h));
  R("spawn bad argv", lshapes_spawn("", 0, BADP, 8, "", 0, &h));
  R("spawn bad handle_out", ls_spawn("", 2, args, "", BADP));
  int r = ls_spawn("", 2, args, "0123", &h);
  printf("spawn child on 0123: %s handle %d\n", errname(r), (int)h);
  return h;
}

static void talk(int32_t kid, int32_t ctl) {
  printf("== messages\n");
  R("send to child before it opened the port", ls_send_str(kid, "inbox", "hello child"));
  static char huge[(1 << 20) + 1];
  R("send 1 MiB + 1", ls_send(kid, "inbox", huge, sizeof huge));
  R("send 1 MiB to nowhere", ls_send(kid, "nowhere", huge, sizeof huge - 1));
  R("send bad port name", ls_send_str(kid, "#inbox", "hi"));
  R("send empty port name", lshapes_send(kid, "", 0, "hi", 2));
  R("send bad data", ls_send(kid, "inbox", BADP, 16));
  int r = recv_str(ctl, -1);
  printf("recv ctl: %s \"%s\" from %d, token %s\n", errname(r), buf, (int)from, token ? "yes" : "no");
  int32_t t = token;
  R("reply", ls_reply_str(t, "pong"));
  R("reply again", ls_reply_str(t, "pong"));
  r = lshapes_recv(ctl, buf, 4, &len, &from, &token, -1);
  printf("recv ctl cap 4: %s len %u\n", errname(r), (unsigned)len);
  r = lshapes_recv(ctl, buf, sizeof buf, &len, &from, &token, -1);
  printf("recv ctl: %s len %u, token %s\n", errname(r), (unsigned)len, token ? "yes" : "no");
  char num[16];
  for (int i = 0; i < 1100; i++) {
    snprintf(num, sizeof num, "%d", i);
    if (ls_send_str(kid, "flood", num)) printf("flood send %d failed\n", i);
  }
  R("send go", ls_send_str(kid, "inbox", "go"));
  r = recv_str(ctl, -1);
  printf("recv ctl: %s \"%s\"\n", errname(r), buf);
  char out[64] = {0};
  uint32_t n = 0;
  R("call a port nobody reads, 30 ms", ls_call_str(kid, "never", "hi", out, sizeof out, &n, 30));
  R("call bad buf", ls_call_str(kid, "echo", "x", BADP, 16, &n, -1));
  R("call bad len_out", ls_call_str(kid, "echo", "x", out, sizeof out, BADP, -1));
  R("call bad port name", ls_call_str(kid, "", "x", out, sizeof out, &n, -1));
  r = ls_call_str(kid, "echo", "ping", out, sizeof out - 1, &n, -1);
  printf("call echo: %s \"%.*s\" len %u\n", errname(r), (int)n, out, (unsigned)n);
  memset(out, 0, sizeof out);
  r = ls_call_str(kid, "echo", "ping", out, 3, &n, 5000);
  printf("call echo cap 3: %s \"%s\" len %u\n", errname(r), out, (unsigned)n);
}

static void waiting(int32_t kid) {
  printf("== wait and kill\n");
  int32_t code = -1;
  R("wait bad code_out", lshapes_wait(kid, BADP, -1));
  int r = lshapes_wait(kid, &code, -1);
  printf("wait child: %s code %d\n", errname(r), (int)code);
  code = -1;
  r = lshapes_wait(kid, &code, 0);
  printf("wait child again: %s code %d\n", errname(r), (int)code);
  R("send to the exited child", ls_send_str(kid, "inbox", "late"));
  R("call the exited child", ls_call_str(kid, "echo", "late", buf, 16, &len, -1));
  const char *args[] = {"sleeper"};
  int32_t s = -1;
  r = ls_spawn("lshapes_calls", 1, args, "", &s);
  printf("spawn sleeper: %s handle %d\n", errname(r), (int)s);
  R("wait sleeper, poll", lshapes_wait(s, &code, 0));
  R("wait sleeper, 30 ms", lshapes_wait(s, &code, 30));
  R("kill sleeper", lshapes_kill(s));
  code = -1;
  r = lshapes_wait(s, &code, -1);
  printf("wait sleeper: %s code %d\n", errname(r), (int)code);
  R("kill sleeper again", lshapes_kill(s));
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0) return child(argc > 2 ? argv[2] : "");
  if (argc > 1 && strcmp(argv[1], "sleeper") == 0) return sleeper();
  if (argc > 1 && strcmp(argv[1], "mailbox") == 0) return mailbox();
  identity();
  ports();
  handles();
  int32_t kid = spawning();
  int32_t ctl = -1;
  ls_port_open("ctl", &ctl);
  talk(kid, ctl);
  waiting(kid);
  printf("done\n");
  return 0;
}
