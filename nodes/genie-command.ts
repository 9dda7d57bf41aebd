/**
 * `genie-command`: runs an instrument action through Genie LabOS and waits for it.
 *
 *  1. The action's definition (`GET …/instruments/{uid}/actions/{name}`, cached per deploy) gives
 *     typed parameters; the values (dialog, overlaid by msg.values) are validated against a JSON
 *     schema built from them (ajv). A bad value is an error naming the parameter and the rule,
 *     and NO command is sent.
 *  2. `POST …/instruments/{uid}/commands`, then `GET …/commands/{cid}` with the shared poller
 *     until success (output 1) or failure (output 2).
 *  3. The command is killed (`POST …/commands/{cid}/kill`) on the timeout (then an error for the
 *     Catch node), on a cancel message (`msg.cancel`; the command's msg leaves on output 2), and —
 *     unless switched off — when the flow is stopped or redeployed.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { configNode, evaluateProperty, handleInput, Msg, translator, waitStatus, type Work } from './lib/node-red';
import type { GenieCommandNode, GenieTenantNode } from './lib/config-nodes';
import type { GenieClient } from './clients/genie/client';
import { commandOutcome } from './clients/genie/client';
import { mergeValues, ValuesInput } from './clients/genie/schema';
import type { GenieAction, GenieCommand } from './clients/genie/types';
import { isCancelled, LabError } from './lib/http/errors';
import { Settings } from './lib/settings';
import { countGenieCommand } from './lib/metrics';

interface GenieCommandDef extends NodeDef {
  tenant: string;
  instrument: string;
  instrumentType: string;
  action: string;
  actionType: string;
  params?: Record<string, unknown>;
  interval?: string | number;
  maxInterval?: string | number;
  timeout?: string | number;
  killOnStop?: boolean;
}

/**
 * A command's hold on the tenant's connections (GenieClient.hold), from the moment it is sent
 * until it is no longer followed. A flow stop closes the tenant in the same stop as this node; the
 * hold keeps the create's answer (the command id) and the kill from being cut off. The close
 * handler takes the lease over (`byClose`) and releases it after the kill.
 */
interface Lease {
  release: () => void;
  byClose: boolean;
}

interface Running {
  uid: string;
  action: string;
  client: GenieClient;
  /** Aborted by a cancel message. */
  cancel: AbortController;
  lease?: Lease;
}

/** Longest wait of a closing node for the answer of a create in flight (then the kill, ≤ 5 s). */
const CLOSE_WAIT_FOR_CREATE_MS = 8000;

/** A combined signal: aborted when either is. */
function either(a: AbortSignal, b: AbortSignal): AbortSignal {
  const any = (AbortSignal as unknown as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) return any([a, b]);
  const c = new AbortController();
  const onAbort = (s: AbortSignal) => () => c.abort(s.reason);
  if (a.aborted) c.abort(a.reason);
  else if (b.aborted) c.abort(b.reason);
  else {
    a.addEventListener('abort', onAbort(a), { once: true });
    b.addEventListener('abort', onAbort(b), { once: true });
  }
  return c.signal;
}

export = function (RED: NodeAPI): void {
  function GenieCommandNode(this: Node, def: GenieCommandDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'genie-command');
    const settings = new Settings(RED, node).uses(def.tenant, 'genie-tenant');
    const intervalMs = settings.seconds(t('label.interval'), def.interval, { default: 1, min: 0.01 });
    const maxIntervalMs = Math.max(intervalMs, settings.seconds(t('label.upTo'), def.maxInterval, { default: 10, min: 0.01 }));
    const timeoutMs = settings.seconds(t('label.timeout'), def.timeout, { default: 3600, min: 0, above: true });
    const killOnStop = def.killOnStop !== false;
    /** Action definitions, per deploy (a redeploy creates a new node and a fresh cache). */
    const definitions = new Map<string, Promise<GenieAction>>();
    // For the dialog (genie-tenant's admin route): this node's own instrument and action settings,
    // resolved here on the runtime. Only the deployed settings are evaluated, never request input.
    const own = async (value: string, type: string): Promise<{ setting: string; type: string; value?: string; from?: string }> => {
      const base = { setting: value, type: type || 'str' };
      if (base.type !== 'str' && base.type !== 'env') return { ...base, from: base.type };
      if (!value) return { ...base, from: 'msg' };
      const v = await evaluateProperty(RED, node, value, base.type, {} as Msg).catch(() => undefined);
      return typeof v === 'string' && v.trim() && !v.includes('${') ? { ...base, value: v.trim() } : base;
    };
    (node as unknown as GenieCommandNode).genieTarget = async () => ({
      instrument: await own(def.instrument, def.instrumentType),
      action: await own(def.action, def.actionType),
    });
    /** Commands in flight, by command id. */
    const running = new Map<string, Running>();
    /**
     * Commands being sent (no id yet). A cancel marks them, and they are killed once created; a
     * flow stop waits (briefly) for their answer so a command created meanwhile is killed too.
     */
    const sending = new Set<{
      cancelled: boolean;
      uid: string;
      action: string;
      client: GenieClient;
      lease: Lease;
      /** The created command, or why the create failed (its answer may be lost: the command may exist). */
      created: Promise<{ cmd: GenieCommand } | { error: unknown }>;
    }>();

    function definition(client: GenieClient, uid: string, name: string, signal: AbortSignal): Promise<GenieAction> {
      const key = `${uid}\u0000${name}`;
      let p = definitions.get(key);
      if (!p) {
        p = client.getAction(uid, name, signal);
        definitions.set(key, p);
        p.catch(() => definitions.delete(key));
      }
      return p;
    }

    /** The instrument or the action: from the dialog, else msg.instrument / msg.action. */
    async function text(setting: 'instrument' | 'action', value: string, type: string, msg: Msg): Promise<string> {
      let v: unknown;
      if ((type || 'str') === 'str' && !value) v = msg[setting];
      else v = await evaluateProperty(RED, node, value, type || 'str', msg);
      if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) {
        if (!type || type === 'str') throw new LabError('BAD_INPUT', `genie.${setting}MissingDialog`);
        const where = type === 'msg' ? `msg.${value}` : type === 'env' ? `env ${value}` : `${type}.${value}`;
        throw new LabError('BAD_INPUT', `genie.${setting}Missing`, { where });
      }
      if (typeof v !== 'string' && typeof v !== 'number') throw new LabError('BAD_INPUT', `genie.${setting}NotText`, { type: typeof v });
      return String(v).trim();
    }

    type KillReason = 'cancel' | 'timeout' | 'stopped' | 'stoppedSending';

    async function kill(r: Running, cid: string, why: KillReason): Promise<boolean> {
      try {
        await r.client.killCommand(r.uid, cid, undefined, 5000);
        return true;
      } catch (err) {
        node.warn(t(`warn.killFailed.${why}`, { id: cid, error: t.error(err).message }));
        return false;
      }
    }

    /** Follows a created command to its end; kills it on a cancel message or the timeout. */
    async function follow(msg: Msg, send: Work['send'], signal: AbortSignal, status: Work['status'], r: Running, cmd: GenieCommand, actionName: string, uid: string): Promise<void> {
      const client = r.client;
      msg.genie = { instrument: uid, action: actionName, commandId: cmd.id };
      const started = Date.now();
      let final: GenieCommand;
      try {
        status('blue', t('status.running', { action: actionName }));
        final =
          commandOutcome(cmd.status) !== 'running'
            ? cmd
            : await client.waitForCommand(uid, cmd.id, {
                intervalMs,
                maxIntervalMs,
                factor: 1.5,
                timeoutMs,
                signal: either(signal, r.cancel.signal),
                onWait: waitStatus(t, status),
                onPoll: ({ error }) =>
                  error
                    ? status('yellow', t('status.pollError', { code: error.code.toLowerCase() }), 'ring')
                    : status('blue', t('status.runningFor', { action: actionName, seconds: Math.round((Date.now() - started) / 1000) })),
              });
      } catch (err) {
        if (signal.aborted) throw err; // node closing: the close handler kills (if configured)
        if (r.cancel.signal.aborted && isCancelled(err)) {
          status('yellow', t('status.killingCancelled'), 'ring');
          const killed = await kill(r, cmd.id, 'cancel');
          msg.payload = { status: 'failure', killed, error: t(killed ? 'cancelled.killed' : 'cancelled.notKilled') };
          msg.command = cmd;
          countGenieCommand('cancelled');
          send([null, msg]);
          return;
        }
        if (err instanceof LabError && err.code === 'TIMEOUT' && err.key === 'poll.notFinished') {
          status('yellow', t('status.killingTimeout'), 'ring');
          const killed = await kill(r, cmd.id, 'timeout');
          countGenieCommand('timeout');
          throw new LabError('TIMEOUT', killed ? 'genie.commandTimeoutKilled' : 'genie.commandTimeoutNotKilled', {
            id: cmd.id,
            action: actionName,
            uid,
            seconds: timeoutMs / 1000,
          });
        }
        throw err;
      } finally {
        running.delete(cmd.id);
      }
      msg.command = final;
      if (commandOutcome(final.status) === 'success') {
        msg.payload = { results: final.results, message: final.message, output: final.output };
        countGenieCommand('succeeded');
        send([msg, null]);
      } else {
        msg.payload = { status: final.status, error: final.error, message: final.message, output: final.output };
        countGenieCommand('failed');
        send([null, msg]);
      }
    }

    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        if (msg.cancel) {
          const only = typeof msg.commandId === 'string' ? msg.commandId : undefined;
          let n = 0;
          for (const [cid, r] of running) {
            if (only && cid !== only) continue;
            r.cancel.abort(new Error('cancel message'));
            n++;
          }
          if (!only) {
            for (const t of sending) t.cancelled = true;
            n += sending.size;
          }
          msg._genieCancelled = n;
          return;
        }
        const tenant = configNode<GenieTenantNode>(RED, node, def.tenant, 'genie-tenant');
        const client = tenant.client();
        const uid = await text('instrument', def.instrument, def.instrumentType, msg);
        const actionName = await text('action', def.action, def.actionType, msg);

        status('blue', t('status.checking'));
        const action = await definition(client, uid, actionName, signal);
        const values = mergeValues(action, def.params, msg.values as ValuesInput);

        // The node may have closed while the definition was read (a cached one is not aborted by
        // the stop): nothing may be sent then, as the close handler has already looked for
        // commands to kill. From here to `sending.add` nothing awaits, so no stop slips in between.
        if (signal.aborted) throw new LabError('CANCELLED', 'genie.nodeClosed');
        status('blue', t('status.sending', { action: actionName }));
        const lease: Lease = { release: client.hold(), byClose: false };
        try {
          // Not aborted by a flow stop: the command may already exist, and its id is needed to kill it.
          const post = client.runCommand(uid, action, values, undefined, waitStatus(t, status));
          const ticket = {
            cancelled: false,
            uid,
            action: actionName,
            client,
            lease,
            created: post.then(
              (cmd) => ({ cmd }),
              (error: unknown) => ({ error }),
            ),
          };
          sending.add(ticket);
          let cmd: GenieCommand;
          try {
            cmd = await post;
          } finally {
            sending.delete(ticket);
          }
          if (signal.aborted) throw new LabError('CANCELLED', 'genie.nodeClosed'); // the close handler kills it
          delete msg.values; // consumed: a chained genie-command must not inherit them
          const r: Running = { uid, action: actionName, client, cancel: new AbortController(), lease };
          running.set(cmd.id, r);
          if (ticket.cancelled) r.cancel.abort(new Error('cancel message'));
          await follow(msg, send, signal, status, r, cmd, actionName, uid);
        } finally {
          if (!lease.byClose) lease.release();
        }
      },
      {
        settings,
        doneStatus: (msg: Msg) => {
          if (msg.cancel) return t('status.cancelled', { count: Number(msg._genieCancelled ?? 0) });
          const c = msg.command as GenieCommand | undefined;
          if (!c) return t.shared('status.done');
          // Otherwise the command's own status, as Genie names it.
          if ((msg.payload as { killed?: boolean })?.killed) return { text: t('status.killed'), fill: 'red' };
          return commandOutcome(c.status) === 'success' ? String(c.status) : { text: String(c.status), fill: 'red' };
        },
        onClose: async () => {
          const all = [...running.entries()];
          const posting = [...sending];
          running.clear();
          sending.clear();
          // The leases pass to this handler: the tenant's connections stay open until the kills
          // below are done (the tenant closes in the same stop).
          for (const [, r] of all) if (r.lease) r.lease.byClose = true;
          for (const p of posting) p.lease.byClose = true;
          if (!killOnStop) {
            for (const [, r] of all) r.lease?.release();
            for (const p of posting) p.lease.release();
            return;
          }
          const stopRunning = all.map(async ([cid, r]) => {
            try {
              await kill(r, cid, 'stopped');
            } finally {
              r.lease?.release();
            }
          });
          // A command being sent: wait (bounded) for its id, then kill it. The create may also
          // have reached Genie with its answer lost: then say so, since it may still be running.
          const late = posting.map(async (p) => {
            let timer: NodeJS.Timeout | undefined;
            try {
              const cap = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), CLOSE_WAIT_FOR_CREATE_MS)));
              const outcome = await Promise.race([p.created, cap]);
              if (outcome === 'timeout') {
                node.warn(t('warn.createUnknownOnStop', { action: p.action, uid: p.uid, seconds: CLOSE_WAIT_FOR_CREATE_MS / 1000 }));
              } else if ('cmd' in outcome) {
                await kill({ uid: p.uid, action: p.action, client: p.client, cancel: new AbortController() }, outcome.cmd.id, 'stoppedSending');
              } else if (outcome.error instanceof LabError && (outcome.error.code === 'NETWORK' || outcome.error.code === 'TIMEOUT' || (outcome.error.status ?? 0) >= 500)) {
                // no usable answer (connection lost, timeout, 5xx): Genie may have created it
                node.warn(t('warn.createLostOnStop', { action: p.action, uid: p.uid, error: t.error(outcome.error).message }));
              }
            } finally {
              clearTimeout(timer);
              p.lease.release();
            }
          });
          await Promise.all([...stopRunning, ...late]);
        },
      },
    );
  }
  RED.nodes.registerType('genie-command', GenieCommandNode as never);
};
