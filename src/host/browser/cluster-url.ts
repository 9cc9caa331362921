// The cluster token lives in the URL fragment (#c=…), which browsers never send to a server:
// the relay serves the page without ever learning which cluster it belongs to.
import { TOKEN_PATTERN, newClusterToken } from '../../kernel/identity.ts';

/** The token from `location.hash`, or a new one written into the fragment. */
export function clusterToken(loc: Location = location): { token: string; created: boolean } {
  const found = new URLSearchParams(loc.hash.slice(1)).get('c');
  if (found && TOKEN_PATTERN.test(found)) return { token: found, created: false };
  const token = newClusterToken((n) => crypto.getRandomValues(new Uint8Array(n)));
  history.replaceState(null, '', `${loc.pathname}${loc.search}#c=${token}`);
  return { token, created: true };
}

export function relayUrl(loc: Location = location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/signal`;
}
