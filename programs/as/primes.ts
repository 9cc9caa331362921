// primes LIMIT [PARTS]: counts the primes below LIMIT by trial division (CPU-bound on purpose).
// With PARTS > 1, [2, LIMIT) is cut into PARTS ranges of about equal work (trial division costs
// more for larger numbers: see bound()): this process counts the first and
// spawns PARTS-1 copies of itself (`primes --part LO HI`, placed by the Scheduler) which send
// their counts back to its port "result". Every part prints
//   part LO..HI on PEER8: N primes
// and the parent ends with
//   primes below LIMIT: COUNT
import {
  Child, Port, args, die, errno, eprintln, errnoName, getpid, parent, parseUint, peerId, println, spawn,
} from "./lib/lshapes";

const USAGE = "usage: primes LIMIT [PARTS]   (or: primes --part LO HI)";
const MAX_LIMIT: u64 = 0xFFFFFFFF;
const MAX_PARTS: i64 = 1024;

function isPrime(n: u32): bool {
  if (n < 2) return false;
  if (n < 4) return true;
  if ((n & 1) == 0) return false;
  for (let d: u32 = 3; <u64>d * <u64>d <= <u64>n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

function countPrimes(lo: u64, hi: u64): u64 {
  let count: u64 = 0;
  for (let n = lo; n < hi; n++) {
    if (isPrime(<u32>n)) count++;
  }
  return count;
}

/** Counts [lo, hi) and prints the part line. */
function part(lo: u64, hi: u64): u64 {
  const n = countPrimes(lo, hi);
  println("part " + lo.toString() + ".." + hi.toString() + " on " + peerId().substring(0, 8) + ": " + n.toString() + " primes");
  return n;
}

/**
 * The start of part i of [2, limit): ranges of equal work. Testing a prime p costs ~sqrt(p)
 * divisions and primes thin out as 1/ln p, so the work below t grows like W(t) = t^1.5 / ln t;
 * bound(i) solves W(t) = W(limit) * i / parts by bisection. Equal ranges would give the last
 * part most of the work (62 % of it for two parts).
 */
function bound(limit: u64, parts: u64, i: u64): u64 {
  if (limit <= 2 || i == 0) return 2;
  if (i >= parts) return limit;
  const target = work(<f64>limit) * <f64>i / <f64>parts;
  let lo: f64 = 2;
  let hi: f64 = <f64>limit;
  for (let k = 0; k < 64; k++) {
    const mid = (lo + hi) / 2;
    if (work(mid) < target) lo = mid;
    else hi = mid;
  }
  const b = <u64>Math.round(hi);
  return b < 2 ? 2 : b > limit ? limit : b;
}

function work(t: f64): f64 {
  return t < 3 ? 0 : Math.pow(t, 1.5) / Math.log(t);
}

function arg(argv: string[], i: i32, max: u64): u64 {
  const v = parseUint(argv[i]);
  if (v < 0 || <u64>v > max) die("bad number '" + argv[i] + "'\n" + USAGE, 2);
  return <u64>v;
}

function main(): void {
  const argv = args();
  if (argv.length == 4 && argv[1] == "--part") {
    const lo = arg(argv, 2, MAX_LIMIT);
    const hi = arg(argv, 3, MAX_LIMIT);
    const n = part(lo, hi);
    const e = parent().sendString("result", lo.toString() + " " + hi.toString() + " " + n.toString());
    if (e != 0) die("sending the result of part " + lo.toString() + ".." + hi.toString() + " to the parent: " + errnoName(e));
    return;
  }
  if (argv.length < 2 || argv.length > 3) die(USAGE, 2);
  const limit = arg(argv, 1, MAX_LIMIT);
  const parts = argv.length == 3 ? arg(argv, 2, MAX_PARTS) : 1;
  if (parts < 1) die("PARTS must be at least 1\n" + USAGE, 2);

  let total: u64 = 0;
  if (parts == 1) {
    total = part(bound(limit, 1, 0), bound(limit, 1, 1));
    println("primes below " + limit.toString() + ": " + total.toString());
    return;
  }

  getpid(); // proves the ABI is there before spawning anything
  const port = Port.open("result").orExit("opening port result");
  const children = new Array<Child>();
  const reported = new Array<bool>(<i32>parts); // by part index; [0] is ours
  for (let i: u64 = 1; i < parts; i++) {
    const r = spawn("", ["--part", bound(limit, parts, i).toString(), bound(limit, parts, i + 1).toString()]);
    if (!r.ok) {
      eprintln("primes: spawning part " + i.toString() + ": " + errnoName(r.errno));
      for (let j = 0; j < children.length; j++) children[j].kill();
      die("gave up");
    }
    children.push(r.value);
  }

  total = part(bound(limit, parts, 0), bound(limit, parts, 1));
  reported[0] = true;

  // Collect PARTS-1 results. While waiting, check now and then that no child ended without
  // reporting: one that failed, or exited 0 and still did not report a few seconds later, must
  // not leave us waiting forever.
  const strikes = new Array<i32>(children.length);
  let missing = <i32>parts - 1;
  while (missing > 0) {
    const m = port.recv(1000);
    if (m == null) {
      for (let j = 0; j < children.length; j++) {
        if (reported[j + 1]) continue;
        const w = children[j].wait(0);
        if (w.ok && (w.value != 0 || ++strikes[j] >= 3)) {
          die("part " + (j + 1).toString() + " exited with " + w.value.toString() + " without reporting");
        }
        if (!w.ok && w.errno != errno.TIMEDOUT) die("waiting for part " + (j + 1).toString() + ": " + errnoName(w.errno));
      }
      continue;
    }
    const text = m.text();
    const fields = text.split(" ");
    if (fields.length != 3) die("bad result message '" + text + "'");
    const lo = parseUint(fields[0]);
    const hi = parseUint(fields[1]);
    const count = parseUint(fields[2]);
    let index: i32 = -1;
    for (let i: u64 = 1; i < parts && index < 0; i++) {
      if (<i64>bound(limit, parts, i) == lo && <i64>bound(limit, parts, i + 1) == hi && !reported[<i32>i]) index = <i32>i;
    }
    if (index < 0 || count < 0) die("unexpected result message '" + text + "'");
    reported[index] = true;
    total += <u64>count;
    missing--;
  }
  for (let j = 0; j < children.length; j++) {
    const code = children[j].wait().orExit("waiting for part " + (j + 1).toString());
    if (code != 0) die("part " + (j + 1).toString() + " exited with " + code.toString());
  }
  println("primes below " + limit.toString() + ": " + total.toString());
}

main();
