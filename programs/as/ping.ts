// ping [N] [--on PEER]: spawns `pong` (on PEER if given, else where the Scheduler chooses),
// calls its port "ball" N times (default 5) with "ping i" and prints each reply ("pong i"),
// then the average round trip, sends "stop" and waits for pong to exit.
import { args, die, errnoName, parseUint, println, spawn } from "./lib/lshapes";

const USAGE = "usage: ping [N] [--on PEER]";

function main(): void {
  const argv = args();
  let n: i64 = 5;
  let peer = "";
  let haveN = false;
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] == "--on" && i + 1 < argv.length) {
      peer = argv[++i];
    } else if (!haveN) {
      n = parseUint(argv[i]);
      if (n < 1 || n > 1000000) die("bad count '" + argv[i] + "'\n" + USAGE, 2);
      haveN = true;
    } else {
      die(USAGE, 2);
    }
  }

  const pong = spawn("pong", [], peer).orExit(peer.length ? "spawning pong on " + peer : "spawning pong");
  const t0 = process.hrtime();
  for (let i: i64 = 1; i <= n; i++) {
    const r = pong.callString("ball", "ping " + i.toString());
    if (!r.ok) {
      pong.kill();
      die("call " + i.toString() + ": " + errnoName(r.errno));
    }
    println(r.value);
  }
  const avgUs = (process.hrtime() - t0) / <u64>n / 1000;
  const frac = (avgUs % 1000).toString();
  println(n.toString() + " round trips, avg " + (avgUs / 1000).toString() + "." + "000".substring(frac.length) + frac + " ms");

  const e = pong.sendString("ball", "stop");
  if (e != 0) die("sending stop: " + errnoName(e));
  const code = pong.wait().orExit("waiting for pong");
  println("pong exited with " + code.toString());
  if (code != 0) die("pong failed");
}

main();
