// How tests and benchmarks start Debian's Chromium (never a downloaded browser). On a host with
// only loopback, WebRTC gathers no ICE candidates without the loopback flag and the media
// permission every context is granted.
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--use-fake-ui-for-media-stream',
  '--disable-quic',
  '--no-first-run',
  // A second name for loopback that is not a secure context, like a LAN address over http.
  '--host-resolver-rules=MAP lshapes.test 127.0.0.1',
];
