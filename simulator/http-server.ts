/**
 * The HTTP plumbing every simulated service shares: listen on a port and report the URL, and
 * shut down with every open socket destroyed — hung requests included — so tests end promptly.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';

/** Listens on `host:port` (0 = a free port) and resolves with `http://host:port`. */
export async function listen(server: http.Server, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
}

export function portOf(server: http.Server): number {
  const a = server.address();
  return a && typeof a === 'object' ? a.port : 0;
}

/** Stops accepting connections and destroys the open ones. */
export async function shutdown(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
