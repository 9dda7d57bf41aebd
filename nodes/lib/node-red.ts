/**
 * The one path every node of the pack takes from an input message to a result or an error:
 * status while it works, `send` + `done()` on success, and on failure a red status plus
 * `done(err)` — which reports the error *with the msg* so Catch nodes receive it — and no
 * unhandled promise rejection whatever the work throws. Work in flight is cancelled when the node
 * is closed (redeploy, stop), through an AbortSignal.
 */
import type { Node, NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import * as fs from 'fs';
import * as path from 'path';
import type { OnWait, WaitReason } from './http/client';
import { badInput, describeError, LabError } from './http/errors';
import { englishText, flattenVars, SHARED_CATALOGUE, type MessageVars, type SharedStatusKey } from './messages';
import { failureOfError } from './journey/classify';
import { configProblem, expandSetting, type CheckedConfigNode, type Settings } from './settings';

export type Msg = NodeMessageInFlow & Record<string, unknown>;
export type SendFn = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;

export type StatusFill = 'red' | 'green' | 'yellow' | 'blue' | 'grey';

export interface Work {
  msg: Msg;
  send: SendFn;
  /** Aborted when the node closes; pass it to every request and wait. */
  signal: AbortSignal;
  /** The node's texts in the runtime's language. */
  t: Translate;
  status(fill: StatusFill, text: string, shape?: 'dot' | 'ring'): void;
}

export interface InputOptions {
  /** Status shown after a success; default a green dot "done". Return null to clear it. */
  doneStatus?: (msg: Msg) => string | { text: string; fill: StatusFill } | null;
  /** Called once when the node closes, after in-flight work was told to stop. */
  onClose?: (removed: boolean) => Promise<void> | void;
  /**
   * The node's settings (and the config nodes it uses). When one is unusable the node shows it
   * as a red ring at deploy, and every message fails with it (BAD_INPUT, Catch-able, with the msg)
   * without reaching `work`.
   */
  settings?: Settings;
  /** Called before a message fails for unusable settings (e.g. to answer an HTTP request anyway). */
  onSettingsProblem?: (msg: Msg, send: SendFn) => void;
}

const MAX_STATUS = 40;

export function setStatus(node: Node, fill: StatusFill, text: string, shape: 'dot' | 'ring' = 'dot'): void {
  node.status({ fill, shape, text: text.length > MAX_STATUS ? text.slice(0, MAX_STATUS - 1) + '…' : text });
}

/**
 * Reports an error the Catch node can receive with `msg` (its `code` reaches `msg.error.code`),
 * in the runtime's language, and shows it as a red ring.
 */
export function reportError(t: Translate, node: Node, err: unknown, msg: Msg | undefined, done?: (err?: Error) => void): void {
  const error = t.error(err);
  // A file's message carries the failure exactly (code, HTTP status, node) back to its watcher,
  // which decides whether the file is sent again; Catch nodes copy only the message and code.
  const lf = msg?.labwireFile;
  if (lf && typeof lf === 'object' && !Array.isArray(lf)) (lf as Record<string, unknown>).failure = failureOfError(error, node);
  setStatus(node, 'red', error.message, 'ring');
  if (done) done(error);
  else node.error(error, msg as NodeMessage);
}

/**
 * Registers the node's input handler. `work` resolves when the message has been handled (it calls
 * `send` itself); whatever it throws or rejects with becomes a Catch-able error with the msg.
 */
export function handleInput(RED: NodeAPI, node: Node, work: (w: Work) => Promise<void>, opts: InputOptions = {}): void {
  const t = translator(RED, node.type);
  const inFlight = new Set<AbortController>();
  const atDeploy = opts.settings?.problem();
  if (atDeploy) {
    const text = t.error(atDeploy).message;
    setStatus(node, 'red', text, 'ring');
    node.warn(text);
  }

  node.on('input', (rawMsg: NodeMessageInFlow, send: SendFn, done: (err?: Error) => void) => {
    const msg = rawMsg as Msg;
    const problem = opts.settings?.problem();
    if (problem) {
      try {
        opts.onSettingsProblem?.(msg, send);
        reportError(t, node, problem, msg, done);
      } catch (err) {
        node.error(err);
      }
      return;
    }
    const controller = new AbortController();
    inFlight.add(controller);
    const w: Work = {
      msg,
      send,
      signal: controller.signal,
      t,
      status: (fill, text, shape) => {
        if (!controller.signal.aborted) setStatus(node, fill, text, shape);
      },
    };
    Promise.resolve()
      .then(() => work(w))
      .then(
        () => {
          if (controller.signal.aborted) return done();
          const text = opts.doneStatus ? opts.doneStatus(msg) : t.shared('status.done');
          const warning = opts.settings?.warning();
          if (warning) setStatus(node, 'yellow', warning.message, 'ring');
          else if (text === null) node.status({});
          else if (typeof text === 'string') setStatus(node, 'green', text);
          else setStatus(node, text.fill, text.text);
          done();
        },
        (err) => {
          // A node closed mid-work stops quietly: the flow is being replaced, not failing.
          if (controller.signal.aborted) return done();
          reportError(t, node, err, msg, done);
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
    if (type !== 'msg' && type !== 'env') throw badInput('common.settingEmpty', { setting: label });
    throw badInput('common.settingMissing', { setting: label, where: type === 'msg' ? `msg.${value}` : `env ${value}` });
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw badInput('common.settingNotText', { setting: label, type: typeof v });
  return String(v).trim();
}

/**
 * The config node a node points at, or a clear error naming what to fix. Used by every node that
 * talks to a service (Benchling tenant, robot, LIMS host).
 */
export function configNode<T>(RED: NodeAPI, node: Node, id: string | undefined, type: string): T {
  const cfg = id ? (RED.nodes.getNode(id) as unknown as (T & Node & CheckedConfigNode) | null) : null;
  if (!cfg) throw badInput('common.noConfigNode', { type, node: node.name || node.type });
  // A config node with an unusable setting is constructed anyway and tells what is wrong.
  const problem = cfg.settingsProblem?.();
  if (problem) throw configProblem(cfg, type, problem);
  return cfg;
}

/**
 * Substitutes `${VAR}` anywhere in a setting (Node-RED itself only substitutes a value that is
 * exactly `${VAR}`), from the flow's and the process's environment; an unset variable is a clear
 * error rather than an empty path or URL.
 */
export function expandEnv(RED: NodeAPI, node: Node, label: string, value: string | undefined): string {
  return expandSetting(RED, node, label, value);
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

/** The package's name: Node-RED names each catalogue's namespace `<package>/<node set>`. */
const PACKAGE_NAME: string = (() => {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')).name;
  } catch {
    return '@labwire/node-red-lab-automation';
  }
})();

export interface Translate {
  /** A text of the node's own catalogue, `<type>.<key>` (e.g. `status.uploading`). */
  (key: string, vars?: MessageVars): string;
  /** A text of the pack's shared catalogue, `lab-messages.<key>` (e.g. `status.waitRateLimit`). */
  shared(key: string, vars?: MessageVars): string;
  /** An error retold in the runtime's language (a LabError by its message id), redacted. */
  error(err: unknown): Error;
}

/**
 * Texts in the runtime's language (Node-RED picks it from `settings.lang` or the environment). A
 * text no catalogue of that language holds — or any text where no catalogue is loaded, as under
 * the test helper — comes from the en-US catalogue file, so English is written only there.
 */
export function translator(RED: NodeAPI, type: string): Translate {
  const lookup = (namespace: string | null, file: string, key: string, vars: MessageVars = {}): string => {
    const full = namespace ? `${namespace}:${key}` : key;
    let text: string | undefined;
    try {
      text = RED._(full, flattenVars(vars, (ref) => t.shared(`errors.${ref.key}`, ref.vars)));
    } catch {
      text = undefined;
    }
    return !text || text === full || text === key ? englishText(file, key, vars) : text;
  };
  const t = ((key: string, vars?: MessageVars) => lookup(null, type, `${type}.${key}`, vars)) as Translate;
  t.shared = (key, vars) => lookup(`${PACKAGE_NAME}/${SHARED_CATALOGUE}`, SHARED_CATALOGUE, `${SHARED_CATALOGUE}.${key}`, vars);
  t.error = (err) => {
    if (err instanceof LabError) {
      const key = `errors.${err.key}`;
      const text = t.shared(key, err.vars);
      // No text for the id in any catalogue: keep the client's own (English) message.
      return text === `${SHARED_CATALOGUE}.${key}` ? err : err.retold(text);
    }
    if (!(err instanceof Error)) return new Error(describeError(err));
    const safe = describeError(err);
    // Not one of ours: passed on as it is, unless a secret has to come out of its message.
    return safe === err.message ? err : Object.assign(new Error(safe), { name: err.name, code: (err as { code?: unknown }).code });
  };
  return t;
}

const WAIT_TEXT: Record<WaitReason, SharedStatusKey> = {
  'rate-limit': 'waitRateLimit',
  unavailable: 'waitUnavailable',
  'retry-network': 'retryNetwork',
  'retry-timeout': 'retryTimeout',
  'retry-status': 'retryServer',
};

/** An `onWait` that shows the shared HTTP client's waits as a yellow ring, in the node's language. */
export function waitStatus(t: Translate, status: (fill: StatusFill, text: string, shape?: 'dot' | 'ring') => void): OnWait {
  return (_reason, _ms, code) => status('yellow', t.shared(`status.${WAIT_TEXT[code]}`), 'ring');
}
