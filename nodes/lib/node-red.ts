/**
 * The one path every node of the pack takes from an input message to a result or an error:
 * status while it works, `send` + `done()` on success, and on failure a red status plus
 * `done(err)` — which reports the error *with the msg* so Catch nodes receive it — and no
 * unhandled promise rejection whatever the work throws. Work in flight is cancelled when the node
 * is closed (redeploy, stop), through an AbortSignal.
 */
import type { Node, NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { OnWait, WaitReason } from './http/client';
import { badInput, describeError } from './http/errors';

export type Msg = NodeMessageInFlow & Record<string, unknown>;
export type SendFn = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;

export type StatusFill = 'red' | 'green' | 'yellow' | 'blue' | 'grey';

export interface Work {
  msg: Msg;
  send: SendFn;
  /** Aborted when the node closes; pass it to every request and wait. */
  signal: AbortSignal;
  status(fill: StatusFill, text: string, shape?: 'dot' | 'ring'): void;
}

export interface InputOptions {
  /** Status shown after a success; default a green dot "done". Return null to clear it. */
  doneStatus?: (msg: Msg) => string | null;
  /** Called once when the node closes, after in-flight work was told to stop. */
  onClose?: (removed: boolean) => Promise<void> | void;
}

const MAX_STATUS = 40;

export function setStatus(node: Node, fill: StatusFill, text: string, shape: 'dot' | 'ring' = 'dot'): void {
  node.status({ fill, shape, text: text.length > MAX_STATUS ? text.slice(0, MAX_STATUS - 1) + '…' : text });
}

/** Reports an error the Catch node can receive with `msg`, and shows it as a red ring. */
export function reportError(node: Node, err: unknown, msg: Msg | undefined, done?: (err?: Error) => void): void {
  const error = err instanceof Error ? err : new Error(describeError(err));
  setStatus(node, 'red', error.message, 'ring');
  if (done) done(error);
  else node.error(error, msg as NodeMessage);
}

/**
 * Registers the node's input handler. `work` resolves when the message has been handled (it calls
 * `send` itself); whatever it throws or rejects with becomes a Catch-able error with the msg.
 */
export function handleInput(node: Node, work: (w: Work) => Promise<void>, opts: InputOptions = {}): void {
  const inFlight = new Set<AbortController>();

  node.on('input', (rawMsg: NodeMessageInFlow, send: SendFn, done: (err?: Error) => void) => {
    const msg = rawMsg as Msg;
    const controller = new AbortController();
    inFlight.add(controller);
    const w: Work = {
      msg,
      send,
      signal: controller.signal,
      status: (fill, text, shape) => {
        if (!controller.signal.aborted) setStatus(node, fill, text, shape);
      },
    };
    Promise.resolve()
      .then(() => work(w))
      .then(
        () => {
          if (controller.signal.aborted) return done();
          const text = opts.doneStatus ? opts.doneStatus(msg) : 'done';
          if (text === null) node.status({});
          else setStatus(node, 'green', text);
          done();
        },
        (err) => {
          // A node closed mid-work stops quietly: the flow is being replaced, not failing.
          if (controller.signal.aborted) return done();
          reportError(node, err, msg, done);
        },
      )
      .catch((err) => node.error(err)) // a throwing done/send must not become an unhandled rejection
      .finally(() => inFlight.delete(controller));
  });

  node.on('close', (removed: boolean, done: () => void) => {
    for (const c of inFlight) c.abort(new Error('node closed'));
    inFlight.clear();
    Promise.resolve(opts.onClose?.(removed))
      .catch((err) => node.error(err))
      .finally(() => {
        node.status({});
        done();
      });
  });
}

/** Evaluates a TypedInput property (msg / flow / global / env / str / num / json / jsonata). */
export function evaluateProperty(
  RED: NodeAPI,
  node: Node,
  value: string,
  type: string,
  msg: Msg,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    RED.util.evaluateNodeProperty(value, type, node, msg as NodeMessage, (err: Error | null, result: unknown) =>
      err ? reject(err) : resolve(result),
    );
  });
}

/** A required TypedInput value as a non-empty string, or an error naming the setting. */
export async function requireString(
  RED: NodeAPI,
  node: Node,
  label: string,
  value: string,
  type: string,
  msg: Msg,
): Promise<string> {
  const v = await evaluateProperty(RED, node, value, type || 'str', msg);
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) {
    const where = type === 'msg' ? `msg.${value}` : type === 'env' ? `env ${value}` : label;
    throw new Error(`${label} is missing (${where} is empty)`);
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`${label} must be text, got ${typeof v}`);
  return String(v).trim();
}

/**
 * The config node a node points at, or a clear error naming what to fix. Used by every node that
 * talks to a service (Benchling tenant, robot, LIMS host).
 */
export function configNode<T>(RED: NodeAPI, node: Node, id: string | undefined, type: string): T {
  const cfg = id ? (RED.nodes.getNode(id) as unknown as (T & { type?: string }) | null) : null;
  if (!cfg) throw new Error(`no ${type} config node is selected in "${node.name || node.type}"`);
  return cfg;
}

/**
 * A seconds setting from the editor as milliseconds: empty means the default; anything that is
 * not a number of seconds ≥ `min` is a clear error naming the setting.
 */
export function secondsSetting(label: string, value: string | number | undefined, defaultSeconds: number, min = 0): number {
  if (value === undefined || value === null || value === '') return defaultSeconds * 1000;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw badInput(`${label} must be a number of seconds ≥ ${min}, got "${String(value)}"`);
  return Math.round(n * 1000);
}

/**
 * Substitutes `${VAR}` anywhere in a setting (Node-RED itself only substitutes a value that is
 * exactly `${VAR}`), from the flow's and the process's environment; an unset variable is a clear
 * error rather than an empty path or URL.
 */
export function expandEnv(RED: NodeAPI, node: Node, label: string, value: string | undefined): string {
  return (value ?? '').trim().replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
    const v = RED.util.getSetting(node, name.trim());
    if (v === undefined || v === null || v === '') throw badInput(`${label}: environment variable ${name} is not set`);
    return String(v);
  });
}

/**
 * A config node's service client, made on first use — so a bad URL or missing credential is
 * reported, Catch-ably, by the node that needed it — and closed with the config node.
 */
export function lazyClient<C extends { close(): void }>(node: Node, make: () => C): () => C {
  let client: C | null = null;
  node.on('close', (done: () => void) => {
    client?.close();
    client = null;
    done();
  });
  return () => (client ??= make());
}

export type Translate = (key: string, fallback: string, vars?: Record<string, string | number>) => string;

/**
 * Text from a node's message catalogue (`<type>.<key>`, `__name__` placeholders), so status
 * texts follow the editor's language; the English fallback serves where no catalogue is loaded.
 */
export function translator(RED: NodeAPI, type: string): Translate {
  return (key, fallback, vars = {}) => {
    const full = `${type}.${key}`;
    let text: string | undefined;
    try {
      text = RED._(full, vars);
    } catch {
      text = undefined;
    }
    if (!text || text === full) text = fallback.replace(/__(\w+)__/g, (m, v: string) => (v in vars ? String(vars[v]) : m));
    return text;
  };
}

const WAIT_TEXT: Record<WaitReason, [string, string]> = {
  'rate-limit': ['status.waitRateLimit', 'waiting for rate limit'],
  unavailable: ['status.waitUnavailable', 'service unavailable, waiting'],
  'retry-network': ['status.retryNetwork', 'network error, retrying'],
  'retry-timeout': ['status.retryTimeout', 'no answer, retrying'],
  'retry-status': ['status.retryServer', 'server error, retrying'],
};

/** An `onWait` that shows the shared HTTP client's waits as a yellow ring, in the node's language. */
export function waitStatus(t: Translate, status: (fill: StatusFill, text: string, shape?: 'dot' | 'ring') => void): OnWait {
  return (_reason, _ms, code) => {
    const [key, fallback] = WAIT_TEXT[code];
    status('yellow', t(key, fallback), 'ring');
  };
}
