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
import { configNode, evaluateProperty, handleInput, Msg } from './lib/node-red';
import type { GenieTenantNode } from './lib/config-nodes';
import type { GenieClient } from './clients/genie/client';
import { commandOutcome } from './clients/genie/client';
import { mergeValues, ValuesInput } from './clients/genie/schema';
import type { GenieAction, GenieCommand } from './clients/genie/types';
import { describeError, isCancelled, LabError } from './lib/http/errors';

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

interface Running {
  uid: string;
  action: string;
  client: GenieClient;
  /** Aborted by a cancel message. */
  cancel: AbortController;
}

function seconds(v: string | number | undefined, fallback: number): number {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

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
    const intervalMs = seconds(def.interval, 1) * 1000;
    const maxIntervalMs = Math.max(intervalMs, seconds(def.maxInterval, 10) * 1000);
    const timeoutMs = seconds(def.timeout, 3600) * 1000;
    const killOnStop = def.killOnStop !== false;
    /** Action definitions, per deploy (a redeploy creates a new node and a fresh cache). */
    const definitions = new Map<string, Promise<GenieAction>>();
    /** Commands in flight, by command id. */
    const running = new Map<string, Running>();
    /**
     * Commands being sent (no id yet). A cancel marks them, and they are killed once created; a
     * flow stop waits (briefly) for their answer so a command created meanwhile is killed too.
     */
    const sending = new Set<{ cancelled: boolean; uid: string; client: GenieClient; created: Promise<GenieCommand | undefined> }>();

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

    async function text(label: string, value: string, type: string, fallback: string, msg: Msg): Promise<string> {
      let v: unknown;
      if ((type || 'str') === 'str' && !value) v = msg[fallback];
      else v = await evaluateProperty(RED, node, value, type || 'str', msg);
      if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) {
        const where = type === 'msg' ? `msg.${value}` : type === 'env' ? `env ${value}` : type && type !== 'str' ? `${type}.${value}` : `the dialog and msg.${fallback}`;
        throw new LabError('BAD_INPUT', `Genie ${label} is missing (${where} is empty)`);
      }
      if (typeof v !== 'string' && typeof v !== 'number') throw new LabError('BAD_INPUT', `Genie ${label} must be text, got ${typeof v}`);
      return String(v).trim();
    }

    async function kill(r: Running, cid: string, why: string): Promise<boolean> {
      try {
        await r.client.killCommand(r.uid, cid, undefined, 5000);
        return true;
      } catch (err) {
        node.warn(`could not kill Genie command ${cid} (${why}): ${describeError(err)}`);
        return false;
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
        const uid = await text('instrument', def.instrument, def.instrumentType, 'instrument', msg);
        const actionName = await text('action', def.action, def.actionType, 'action', msg);

        status('blue', 'checking values');
        const action = await definition(client, uid, actionName, signal);
        const values = mergeValues(action, def.params, msg.values as ValuesInput);

        status('blue', `sending ${actionName}`);
        // Not aborted by a flow stop: the command may already exist, and its id is needed to kill it.
        const post = client.runCommand(uid, action, values, undefined, (reason) => status('yellow', reason, 'ring'));
        const ticket = { cancelled: false, uid, client, created: post.catch(() => undefined) };
        sending.add(ticket);
        let cmd: GenieCommand;
        try {
          cmd = await post;
        } finally {
          sending.delete(ticket);
        }
        if (signal.aborted) throw new LabError('CANCELLED', 'cancelled: node closed'); // the close handler kills it
        delete msg.values; // consumed: a chained genie-command must not inherit them
        const r: Running = { uid, action: actionName, client, cancel: new AbortController() };
        running.set(cmd.id, r);
        if (ticket.cancelled) r.cancel.abort(new Error('cancel message'));
        msg.genie = { instrument: uid, action: actionName, commandId: cmd.id };
        const started = Date.now();
        let final: GenieCommand;
        try {
          status('blue', `${actionName}: running`);
          final =
            commandOutcome(cmd.status) !== 'running'
              ? cmd
              : await client.waitForCommand(uid, cmd.id, {
                  intervalMs,
                  maxIntervalMs,
                  factor: 1.5,
                  timeoutMs,
                  signal: either(signal, r.cancel.signal),
                  onWait: (reason) => status('yellow', reason, 'ring'),
                  onPoll: ({ error }) =>
                    error
                      ? status('yellow', `${error.code.toLowerCase()}, still polling`, 'ring')
                      : status('blue', `${actionName}: running ${Math.round((Date.now() - started) / 1000)} s`),
                });
        } catch (err) {
          if (signal.aborted) throw err; // node closing: the close handler kills (if configured)
          if (r.cancel.signal.aborted && isCancelled(err)) {
            status('yellow', 'killing (cancelled)', 'ring');
            const killed = await kill(r, cmd.id, 'cancel message');
            msg.payload = { status: 'failure', killed, error: `cancelled by a cancel message; command ${killed ? 'killed' : 'NOT killed'}` };
            msg.command = cmd;
            send([null, msg]);
            return;
          }
          if (err instanceof LabError && err.code === 'TIMEOUT' && /not finished after/.test(err.message)) {
            status('yellow', 'killing (timeout)', 'ring');
            const killed = await kill(r, cmd.id, 'timeout');
            throw new LabError(
              'TIMEOUT',
              `Genie command ${cmd.id} ("${actionName}" on instrument ${uid}) did not finish within ${timeoutMs / 1000} s; ${killed ? 'it was killed' : 'killing it FAILED, check the instrument'}`,
            );
          }
          throw err;
        } finally {
          running.delete(cmd.id);
        }
        msg.command = final;
        if (commandOutcome(final.status) === 'success') {
          msg.payload = { results: final.results, message: final.message, output: final.output };
          send([msg, null]);
        } else {
          msg.payload = { status: final.status, error: final.error, message: final.message, output: final.output };
          send([null, msg]);
        }
      },
      {
        doneStatus: (msg: Msg) => {
          if (msg.cancel) return `cancelled ${Number(msg._genieCancelled ?? 0)} command(s)`;
          const c = msg.command as GenieCommand | undefined;
          if (!c) return 'done';
          return (msg.payload as { killed?: boolean })?.killed ? 'killed' : String(c.status);
        },
        onClose: async () => {
          const all = [...running.entries()];
          const posting = [...sending];
          running.clear();
          sending.clear();
          if (!killOnStop) return;
          const late = posting.map(async (t) => {
            const cap = new Promise<undefined>((r) => {
              const h = setTimeout(r, 8000);
              void t.created.finally(() => clearTimeout(h));
            });
            const cmd = await Promise.race([t.created, cap]);
            if (cmd) await kill({ uid: t.uid, action: '', client: t.client, cancel: new AbortController() }, cmd.id, 'flow stopped while it was being sent');
          });
          await Promise.all([...all.map(([cid, r]) => kill(r, cid, 'flow stopped')), ...late]);
        },
      },
    );
  }
  RED.nodes.registerType('genie-command', GenieCommandNode as never);
};
