/**
 * Harness of the bad-input suites: a flow with the node under test, its config node, a Catch node
 * and an echo (a core function node) that proves the runtime still answers; a check of the Catch
 * error (code, text), the node's red status, and a process-wide record of unhandled rejections;
 * and a tampering proxy that answers one call of a real simulator with what a case needs.
 */
import assert from 'node:assert/strict';
import * as http from 'http';
import type { AddressInfo } from 'net';
import { helper, loadFlow, messages, nextMessage } from './nodered';

/** Unhandled promise rejections since the suite started (a test asserts there are none). */
export const rejections: unknown[] = [];
process.on('unhandledRejection', (reason) => rejections.push(reason));

export interface CaseFlow {
  /** Node types to load (besides catch, function and helper). */
  types: string[];
  /** The flow's nodes (tab, catch, echo and helpers are added). The node under test has id `n`. */
  nodes: Array<Record<string, unknown>>;
  credentials?: Record<string, unknown>;
}

/** Loads a case's flow with a Catch node (→ `caught`) and an echo (`alive` → `echo`). */
export function loadCase(f: CaseFlow): Promise<any> {
  const flow = [
    { id: 'tab', type: 'tab', label: 'bad input' },
    ...f.nodes.map((n) => ({ z: 'tab', ...n })),
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'alive', type: 'function', z: 'tab', func: 'msg.payload = "alive"; return msg;', outputs: 1, wires: [['echo']] },
    { id: 'caught', type: 'helper', z: 'tab' },
    { id: 'echo', type: 'helper', z: 'tab' },
  ];
  return loadFlow(['catch', 'function', ...f.types], flow, f.credentials ?? {});
}

const statusCalls = (node: any): Array<{ fill?: string; shape?: string; text?: string }> => node.status.args.map((a: any[]) => a[0]);

/** The node's latest status: it must be a red ring; its text is returned ("…" of a cut text removed). */
export function redStatus(node: any): string {
  const calls = statusCalls(node);
  const last = calls[calls.length - 1];
  assert.ok(last, 'the node shows a status');
  assert.equal(last.fill, 'red', `red status, got ${JSON.stringify(last)}`);
  assert.equal(last.shape, 'ring');
  const text = String(last.text).replace(/…$/, '');
  assert.ok(text.length > 0, 'the red status has a text');
  return text;
}

/** A red status tells the error: its text is the beginning of the Catch error's message (statuses are cut at 40). */
export function assertStatusTells(statusText: string, caught: any): void {
  const message = String(caught.error.message).replace(/^\w*Error: /, '');
  assert.ok(message.startsWith(statusText), `status "${statusText}" is the start of "${message}"`);
}

/** The Catch error for `msg` sent to node `n`: BAD_INPUT / BAD_RESPONSE with a text matching `pattern`. */
export function assertCaught(caught: any, marker: number, code: string, pattern: RegExp): void {
  assert.equal(caught.error?.source?.id, 'n', 'reported by the node under test');
  assert.equal(caught.marker, marker, 'with the msg that was sent');
  assert.equal(caught.error.code, code, `code ${code}: ${caught.error.message}`);
  assert.match(String(caught.error.message), pattern);
}

/** The runtime still answers: the echo answers, and nothing was rejected unhandled. */
export async function assertAlive(h: any, rejectionsBefore: number): Promise<void> {
  const echoed = nextMessage(h.getNode('echo'), 5000);
  h.getNode('alive').receive({ payload: 'ping' });
  assert.equal((await echoed).payload, 'alive');
  assert.equal(rejections.length, rejectionsBefore, `no unhandled rejection: ${rejections.slice(rejectionsBefore).map(String).join('; ')}`);
}

/** Sends `count` messages to `n` and returns what the Catch node received for them. */
export async function sendAndCatch(h: any, count: number, msg: () => Record<string, unknown>, ms = 10_000): Promise<any[]> {
  const got = messages(h.getNode('caught'), count, ms);
  for (let i = 1; i <= count; i++) h.getNode('n').receive({ ...msg(), marker: i });
  return got;
}

export { helper };

// ------------------------------------------------------------------ tampering proxy

export interface Tamper {
  method: string;
  path: RegExp;
  status?: number;
  body: unknown;
}

/**
 * Forwards everything to `target` (a simulator), except requests matching the current tamper:
 * those are answered with its status and JSON body (the request is not forwarded).
 */
export class TamperProxy {
  private server = http.createServer((req, res) => this.handle(req, res));
  tamper: Tamper | null = null;
  hits = 0;
  url = '';

  constructor(private readonly target: string) {}

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  close(): Promise<void> {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const t = this.tamper;
    const url = req.url ?? '/';
    if (t && req.method === t.method && t.path.test(url.split('?')[0])) {
      this.hits++;
      req.resume();
      req.on('end', () => {
        res.writeHead(t.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(t.body));
      });
      return;
    }
    const target = new URL(this.target);
    const fwd = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: url, headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  }
}
