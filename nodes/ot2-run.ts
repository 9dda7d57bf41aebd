/**
 * `ot2-run`: uploads a protocol (and its support files) to an Opentrons robot, waits until it has
 * analysed / loaded, starts it, follows it to the end and cleans up — on robot software 4.x
 * (protocol sessions) and 5.x–8.x (runs) alike; the work is in clients/opentrons/runner.ts.
 *
 * Output 1 "finished": the run succeeded. Output 2 "failed": the protocol did not load, the run
 * failed or was stopped. Problems that kept the run from being tried (robot busy, feature flag off,
 * door open, unreachable robot, bad input) are Catch-able errors with the original msg.
 * `msg.command` = pause | resume | cancel controls the run in flight.
 *
 * Each run in flight is recorded in a journal: after a restart or redeploy ("leave the robot
 * running") the node finds the run again, follows it to its end and cleans up; it never starts a
 * protocol twice.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { ProtocolRunner, type Progress, type RunOutcome, type RunRecord } from './clients/opentrons/runner';
import type { FileSource } from './clients/opentrons/multipart';
import type { Ot2RobotNode } from './lib/config-nodes';
import { badInput } from './lib/http/errors';
import { Journal, stateFilePath } from './lib/journal';
import { configNode, evaluateProperty, handleInput, Msg, setStatus, type StatusFill } from './lib/node-red';

interface Ot2RunDef extends NodeDef {
  robot: string;
  protocol?: string;
  protocolType?: string;
  protocolName?: string;
  protocolNameType?: string;
  supportFiles?: string;
  supportFilesType?: string;
  parameters?: string;
  parametersType?: string;
  keep?: boolean;
  replaceExisting?: boolean;
  onClose?: 'leave' | 'stop';
  interval?: string | number;
  loadTimeout?: string | number;
  runTimeout?: string | number;
  offlineTimeout?: string | number;
  readSteps?: boolean;
}

interface JournalEntry extends RunRecord {
  topic?: unknown;
}

const COMMANDS = new Set(['pause', 'resume', 'cancel']);

function num(v: string | number | undefined, fallback: number, allowZero = false): number {
  const n = Number(v);
  return Number.isFinite(n) && (n > 0 || (allowZero && n === 0)) && v !== '' && v !== undefined ? n : fallback;
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

const PHASE_TEXT: Record<Progress['phase'], [StatusFill, string, 'dot' | 'ring']> = {
  checking: ['blue', 'checking robot', 'ring'],
  uploading: ['blue', 'uploading', 'ring'],
  analyzing: ['blue', 'analysing protocol', 'ring'],
  loading: ['blue', 'loading protocol', 'ring'],
  starting: ['blue', 'starting', 'ring'],
  running: ['blue', 'running', 'dot'],
  paused: ['yellow', 'paused', 'dot'],
  'door-open': ['yellow', 'door open', 'ring'],
  stopping: ['yellow', 'stopping', 'dot'],
  finishing: ['blue', 'finishing', 'dot'],
  'needs-attention': ['yellow', 'needs attention on the robot', 'ring'],
  offline: ['yellow', 'robot unreachable, retrying', 'ring'],
  'cleaning-up': ['blue', 'cleaning up', 'dot'],
};

export = function (RED: NodeAPI): void {
  function Ot2Run(this: Node, def: Ot2RunDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const pollIntervalMs = num(def.interval, 1) * 1000;
    const loadTimeoutMs = num(def.loadTimeout, 300) * 1000;
    const runTimeoutMs = num(def.runTimeout, 0, true) * 1000;
    const offlineTimeoutMs = num(def.offlineTimeout, 600, true) * 1000;
    const onClosePolicy = def.onClose === 'stop' ? 'stop' : 'leave';
    const journal = Journal.open<JournalEntry>(stateFilePath(RED.settings.userDir as string, 'ot2-run', node.id));
    const closing = new AbortController();
    let active: ProtocolRunner | null = null;
    let queue: Promise<unknown> = Promise.resolve();

    /** One run at a time per node (a robot runs one protocol at a time). */
    function exclusive<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
      const next = queue.then(() => {
        if (signal.aborted) throw new Error('node closed');
        return fn();
      });
      queue = next.catch(() => undefined);
      return next;
    }

    function runner(signal: AbortSignal, key: string, topic: unknown, status: (f: StatusFill, t: string, s?: 'dot' | 'ring') => void): ProtocolRunner {
      const robot = configNode<Ot2RobotNode>(RED, node, def.robot, 'ot2-robot');
      return new ProtocolRunner(robot.client(), {
        pollIntervalMs,
        loadTimeoutMs,
        runTimeoutMs,
        offlineTimeoutMs,
        replaceExisting: def.replaceExisting !== false,
        readSteps: def.readSteps !== false,
        signal,
        onProgress: (p) => {
          const [fill, text, shape] = PHASE_TEXT[p.phase];
          status(fill, p.step ? `${text}: ${p.step}` : text, shape);
        },
        onRecord: (r) => {
          try {
            if (r) journal.set(key, { ...r, topic });
            else if (journal.has(key)) journal.delete(key);
          } catch (err) {
            node.warn(`could not record the run's progress: ${(err as Error).message}`);
          }
        },
        onWait: (reason, _ms, code) => status('yellow', code === 'retry-network' || code === 'retry-timeout' ? 'robot unreachable, retrying' : reason, 'ring'),
      });
    }

    function deliver(msg: Msg, out: RunOutcome, send: (m: unknown) => void): void {
      const { seenAtMs: _seen, ...payload } = out;
      void _seen;
      msg.payload = payload;
      msg.ot2 = payload;
      if (out.outcome === 'succeeded') send([msg, null]);
      else send([null, msg]);
      for (const w of out.warnings) node.warn(w);
    }

    async function files(msg: Msg): Promise<{ protocol: FileSource; support: FileSource[]; params?: Record<string, unknown> }> {
      const protoValue = await evaluateProperty(RED, node, def.protocol || 'payload', def.protocolType || 'msg', msg);
      const nameValue = def.protocolNameType === 'none' ? undefined : await evaluateProperty(RED, node, def.protocolName || 'filename', def.protocolNameType || 'msg', msg);
      let protocol: FileSource;
      if (Buffer.isBuffer(protoValue)) {
        if (typeof nameValue !== 'string' || !nameValue.trim()) {
          throw badInput('the protocol arrived as a Buffer without a file name: set the file name (by default msg.filename, e.g. "protocol.py")');
        }
        protocol = { name: nameValue, data: protoValue };
      } else if (typeof protoValue === 'string' && protoValue.trim()) protocol = { path: protoValue.trim() };
      else throw badInput(`protocol is missing (${def.protocolType === 'str' || def.protocolType === 'env' ? 'set the protocol file path' : `msg.${def.protocol || 'payload'} is empty`}): give a file path, or a Buffer with msg.filename`);

      const support: FileSource[] = [];
      if (def.supportFilesType !== 'none' && def.supportFiles !== undefined && def.supportFiles !== '') {
        const raw = await evaluateProperty(RED, node, def.supportFiles, def.supportFilesType || 'msg', msg);
        const list = raw === undefined || raw === null || raw === '' ? [] : Array.isArray(raw) ? raw : [raw];
        for (const [i, item] of list.entries()) {
          if (typeof item === 'string' && item.trim()) support.push({ path: item.trim() });
          else if (item && typeof item === 'object' && Buffer.isBuffer((item as { data?: unknown }).data)) support.push({ name: String((item as { name?: unknown }).name ?? ''), data: (item as { data: Buffer }).data });
          else if (item && typeof item === 'object' && typeof (item as { path?: unknown }).path === 'string') support.push({ path: (item as { path: string }).path, name: (item as { name?: string }).name });
          else if (Buffer.isBuffer(item) && list.length === 1 && typeof msg.filename === 'string') support.push({ name: msg.filename, data: item });
          else throw badInput(`support file ${i + 1} is not a file path, {path} or {name, data: Buffer}`);
        }
      }

      let params: Record<string, unknown> | undefined;
      if (def.parametersType !== 'none' && def.parameters) {
        const raw = await evaluateProperty(RED, node, def.parameters, def.parametersType || 'msg', msg);
        if (raw !== undefined && raw !== null && raw !== '') {
          if (typeof raw !== 'object' || Array.isArray(raw)) throw badInput('runtime parameters must be an object such as {"reps": 3, "volume": 50.5}');
          params = raw as Record<string, unknown>;
        }
      }
      return { protocol, support, params };
    }

    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const command = typeof msg.command === 'string' ? msg.command.trim().toLowerCase() : undefined;
        if (command !== undefined) {
          if (!COMMANDS.has(command)) throw badInput(`unknown command "${msg.command}": use pause, resume or cancel`);
          if (!active) throw badInput(`no run in progress to ${command}`);
          if (command === 'pause') await active.pause();
          else if (command === 'resume') await active.resume();
          else await active.cancel();
          return;
        }
        const { protocol, support, params } = await files(msg);
        const keep = typeof msg.keep === 'boolean' ? msg.keep : !!def.keep;
        if (active) status('grey', 'queued (a run is in progress)', 'ring');
        await exclusive(signal, async () => {
          const r = runner(signal, String(msg._msgid), msg.topic, status);
          active = r;
          try {
            const out = await r.run({ protocol, supportFiles: support, runTimeParameterValues: params, keep });
            deliver(msg, out, send as (m: unknown) => void);
          } finally {
            if (active === r) active = null;
          }
        });
      },
      {
        doneStatus: (msg: Msg) => {
          if (typeof msg.command === 'string') return `${msg.command} sent`;
          const p = msg.ot2 as RunOutcome | undefined;
          return p ? `${p.state} (${seconds(p.durationMs)})` : 'done';
        },
        onClose: async () => {
          closing.abort();
          const r = active;
          active = null;
          if (r && onClosePolicy === 'stop') await r.stopForShutdown();
          journal.close();
        },
      },
    );

    // Runs left behind by a restart or redeploy: follow them to their end (never start them).
    const leftOver = [...journal.entries()];
    for (const [key, record] of leftOver) {
      void exclusive(closing.signal, async () => {
        const st = (f: StatusFill, t: string, s?: 'dot' | 'ring') => {
          if (!closing.signal.aborted) setStatus(node, f, t, s);
        };
        st('blue', 'reattaching to run on robot', 'ring');
        const r = runner(closing.signal, key, record.topic, st);
        active = r;
        try {
          const out = await r.attach(record);
          const msg = { _msgid: key, topic: record.topic, reattached: true } as unknown as Msg;
          deliver(msg, out, (m) => node.send(m as never));
          st('green', `${out.state} (reattached)`);
        } catch (err) {
          if (!closing.signal.aborted) {
            setStatus(node, 'red', (err as Error).message, 'ring');
            node.error(err);
          }
        } finally {
          if (active === r) active = null;
        }
      }).catch(() => undefined);
    }
  }
  RED.nodes.registerType('ot2-run', Ot2Run as never);
};
