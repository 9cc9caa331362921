// pong: answers every call on its port "ball": "ping i" gets the reply "pong i" (anything else
// is echoed back). Exits 0 when it receives "stop".
import { Port, die, eprintln, errnoName } from "./lib/lshapes";

function main(): void {
  const port = Port.open("ball").orExit("opening port ball");
  for (;;) {
    const m = port.recv();
    if (m == null) continue;
    const text = m.text();
    if (text == "stop") {
      if (m.wantsReply) m.replyString("bye");
      return;
    }
    if (!m.wantsReply) {
      eprintln("pong: ignoring a message that is not a call: '" + text + "'");
      continue;
    }
    const answer = text.startsWith("ping") ? "pong" + text.substring(4) : text;
    const e = m.replyString(answer);
    if (e != 0) die("reply: " + errnoName(e));
  }
}

main();
