// simple-peer ships no types; we use a small, typed slice of it (src/host/common/mesh.ts).
declare module '@thaunknown/simple-peer/lite.js' {
  const Peer: new (opts: { initiator: boolean; trickle?: boolean; config?: RTCConfiguration }) => unknown;
  export default Peer;
}
declare module 'simple-peer' {
  const Peer: new (opts: { initiator: boolean; trickle?: boolean; config?: RTCConfiguration; wrtc?: unknown }) => unknown;
  export default Peer;
}
