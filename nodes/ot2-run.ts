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
import type { Node, NodeAPI } from 'node-red';
import { ProtocolRunner, type Progress, type RunOutcome, type RunRecord } from './clients/opentrons/runner';
import type { Ot2RobotNode } from './lib/config-nodes';
import { badInput } from './lib/http/errors';
import { readRunRequest, type Ot2RunDef } from './lib/ot2-run-input';
import { Journal, stateFilePath } from './lib/journal';
import { Settings } from './lib/settings';
import { countOt2Run } from './lib/metrics';
import { configNode, handleInput, Msg, reportError, setStatus, translator, waitStatus, type StatusFill, type Translate } from './lib/node-red';


interface JournalEntry extends RunRecord {
  topic?: unknown;
}

const COMMANDS = new Set(['pause', 'resume', 'cancel']);

/** Seconds for a status: one decimal below 10 s, whole seconds above. */
function seconds(ms: number): string {
  return ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
}

/** Each phase's status: colour, text (a key under `ot2-run.status`), shape. */
const PHASE_TEXT: Record<Progress['phase'], [StatusFill, string, 'dot' | 'ring']> = {
  checking: ['blue', 'checking', 'ring'],
  uploading: ['blue', 'uploading', 'ring'],
  analyzing: ['blue', 'analyzing', 'ring'],
  loading: ['blue', 'loading', 'ring'],
  starting: ['blue', 'starting', 'ring'],
  running: ['blue', 'running', 'dot'],
  paused: ['yellow', 'paused', 'dot'],
  'door-open': ['yellow', 'doorOpen', 'ring'],
  stopping: ['yellow', 'stopping', 'dot'],
  finishing: ['blue', 'finishing', 'dot'],
  'needs-attention': ['yellow', 'needsAttention', 'ring'],
  offline: ['yellow', 'offline', 'ring'],
  'cleaning-up': ['blue', 'cleaningUp', 'dot'],
};

/** The robot's final state words the catalogue translates (`ot2-run.state.*`); any other is shown as the robot says it. */
const KNOWN_STATES = new Set(['succeeded', 'failed', 'stopped', 'finished', 'error', 'analysis-failed']);

function stateText(t: Translate, state: string): string {
  return KNOWN_STATES.has(state) ? t(`state.${state}`) : state;
}

const COMMAND_SENT: Record<string, string> = { pause: 'status.pauseSent', resume: 'status.resumeSent', cancel: 'status.cancelSent' };
const NO_RUN_TO = { pause: 'ot2.noRunToPause', resume: 'ot2.noRunToResume', cancel: 'ot2.noRunToCancel' } as const;

export = function (RED: NodeAPI): void {
  function Ot2Run(this: Node, def: Ot2RunDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'ot2-run');
    const settings = new Settings(RED, node).uses(def.robot, 'ot2-robot');
    const pollIntervalMs = settings.seconds(t('label.interval'), def.interval, { default: 1, min: 0.01 });
    const loadTimeoutMs = settings.seconds(t('label.loadTimeout'), def.loadTimeout, { default: 300, min: 0, above: true });
    // 0 = no limit
    const runTimeoutMs = settings.seconds(t('label.runTimeout'), def.runTimeout, { default: 0, min: 0 });
    const offlineTimeoutMs = settings.seconds(t('label.offlineTimeout'), def.offlineTimeout, { default: 600, min: 0 });
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

    function runner(signal: AbortSignal, key: string, topic: unknown, status: (f: StatusFill, text: string, s?: 'dot' | 'ring') => void): ProtocolRunner {
      const wait = waitStatus(t, status);
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
          const [fill, key, shape] = PHASE_TEXT[p.phase];
          const text = t(`status.${key}`);
          if (!p.step) status(fill, text, shape);
          else if (p.stepNumber !== undefined) status(fill, t('status.withStepNumber', { status: text, step: p.step, number: p.stepNumber, count: p.stepCount ?? '?' }), shape);
          else status(fill, t('status.withStep', { status: text, step: p.step }), shape);
        },
        onRecord: (r) => {
          try {
            if (r) journal.set(key, { ...r, topic });
            else if (journal.has(key)) journal.delete(key);
          } catch (err) {
            node.warn(t('warnings.recordFailed', { reason: t.error(err).message }));
          }
        },
        // A robot that does not answer is "unreachable" (the run goes on); other waits as the HTTP client tells them.
        onWait: (reason, ms, code) => (code === 'retry-network' || code === 'retry-timeout' ? status('yellow', t('status.offline'), 'ring') : wait(reason, ms, code)),
      });
    }

    function deliver(msg: Msg, out: RunOutcome, send: (m: unknown) => void): void {
      const { seenAtMs: _seen, warningMessages, ...payload } = out;
      void _seen;
      msg.payload = payload;
      msg.ot2 = payload;
      countOt2Run(out.outcome);
      if (out.outcome === 'succeeded') send([msg, null]);
      else send([null, msg]);
      // msg.payload keeps the English warnings (data); the log tells them in the runtime's language.
      for (const w of warningMessages) node.warn(t.shared(`errors.${w.key}`, w.vars));
    }

    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const command = typeof msg.command === 'string' ? msg.command.trim().toLowerCase() : undefined;
        if (command !== undefined) {
          if (!COMMANDS.has(command)) throw badInput('ot2.unknownCommand', { command: String(msg.command) });
          if (!active) throw badInput(NO_RUN_TO[command as keyof typeof NO_RUN_TO]);
          if (command === 'pause') await active.pause();
          else if (command === 'resume') await active.resume();
          else await active.cancel();
          return;
        }
        const request = await readRunRequest(RED, node, def, msg);
        if (active) status('grey', t('status.queued'), 'ring');
        await exclusive(signal, async () => {
          const r = runner(signal, String(msg._msgid), msg.topic, status);
          active = r;
          try {
            const out = await r.run(request);
            deliver(msg, out, send as (m: unknown) => void);
          } finally {
            if (active === r) active = null;
          }
        });
      },
      {
        settings,
        doneStatus: (msg: Msg) => {
          if (typeof msg.command === 'string') return t(COMMAND_SENT[msg.command.trim().toLowerCase()]);
          const p = msg.ot2 as RunOutcome | undefined;
          if (!p) return t.shared('status.done');
          const text = t('status.ended', { state: stateText(t, p.state), seconds: seconds(p.durationMs) });
          // The run ended, but not well (failed / stopped / analysis-failed): red, not green.
          return p.outcome === 'succeeded' ? text : { text, fill: 'red' };
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
        const st = (f: StatusFill, text: string, s?: 'dot' | 'ring') => {
          if (!closing.signal.aborted) setStatus(node, f, text, s);
        };
        st('blue', t('status.reattaching'), 'ring');
        const r = runner(closing.signal, key, record.topic, st);
        active = r;
        try {
          const out = await r.attach(record);
          const msg = { _msgid: key, topic: record.topic, reattached: true } as unknown as Msg;
          deliver(msg, out, (m) => node.send(m as never));
          st('green', t('status.reattached', { state: stateText(t, out.state) }));
        } catch (err) {
          if (!closing.signal.aborted) reportError(t, node, err, undefined);
        } finally {
          if (active === r) active = null;
        }
      }).catch(() => undefined);
    }
  }
  RED.nodes.registerType('ot2-run', Ot2Run as never);
};
