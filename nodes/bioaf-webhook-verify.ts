/**
 * `bioaf-webhook-verify`: placed after a core HTTP In node with "skip body parsing" (Node-RED
 * ≥ 4.1), checks a bioAF webhook delivery — signature over the exact bytes with every configured
 * secret, timestamp window, size — and drops repeats (event id and delivery id, remembered on
 * disk across restarts). Output 1: the verified event; output 2: everything rejected, with
 * msg.statusCode set for an HTTP Response node.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { BioafHostNode } from './lib/config-nodes';
import { configNode, handleInput, type Msg } from './lib/node-red';
import { stateFilePath } from './lib/journal';
import {
  DEFAULT_TOLERANCE_SEC,
  DELIVERY_HEADER,
  EVENT_HEADER,
  REJECT_STATUS,
  RejectReason,
  SeenStore,
  SIGNATURE_HEADER,
  verifySignature,
} from './clients/bioaf/webhook';

interface VerifyDef extends NodeDef {
  host: string;
  tolerance?: string | number;
  maxBytes?: string | number;
  retentionHours?: string | number;
}

/** bioAF retries for about 2.6 h (60 + 300 + 1800 + 7200 s); ids are kept well beyond that. */
const DEFAULT_RETENTION_HOURS = 72;
const DEFAULT_MAX_BYTES = 1024 * 1024;

function header(msg: Msg, name: string): string | undefined {
  const sources = [(msg.req as { headers?: Record<string, unknown> } | undefined)?.headers, msg.headers as Record<string, unknown> | undefined];
  for (const h of sources) {
    if (!h || typeof h !== 'object') continue;
    for (const [k, v] of Object.entries(h)) {
      if (k.toLowerCase() !== name) continue;
      if (Array.isArray(v)) return v.join(',');
      if (typeof v === 'string') return v;
    }
  }
  return undefined;
}

export = function (RED: NodeAPI): void {
  function BioafWebhookVerify(this: Node, def: VerifyDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const tolerance = Number(def.tolerance) > 0 ? Number(def.tolerance) : DEFAULT_TOLERANCE_SEC;
    const maxBytes = Number(def.maxBytes) > 0 ? Math.floor(Number(def.maxBytes)) : DEFAULT_MAX_BYTES;
    const retentionMs = (Number(def.retentionHours) > 0 ? Number(def.retentionHours) : DEFAULT_RETENTION_HOURS) * 3600_000;
    const seen = new SeenStore(stateFilePath(RED.settings.userDir as string, 'bioaf-webhook-verify', node.id), retentionMs);
    const pruner = setInterval(() => seen.prune(), Math.min(retentionMs, 3600_000));
    pruner.unref();
    let verified = 0;
    let rejected = 0;

    handleInput(
      RED,
      node,
      async ({ msg, send }) => {
        const rejectWith = (reason: RejectReason, message: string) => {
          rejected++;
          msg.statusCode = REJECT_STATUS[reason];
          msg.reason = reason;
          msg.reasonText = message;
          msg.payload = { error: reason };
          send([null, msg]);
        };

        const raw = msg.payload;
        if (!Buffer.isBuffer(raw)) {
          // The request must still be answered, so the message also goes out on output 2.
          msg.statusCode = 500;
          msg.reason = 'body_parsed';
          msg.payload = { error: 'body_parsed' };
          send([null, msg]);
          throw new Error(
            'msg.payload is not the raw request body (a Buffer): the HTTP In node parsed it, which destroys the bytes the signature covers. ' +
              'Tick "Skip body parsing" on the HTTP In node (Node-RED ≥ 4.1).',
          );
        }
        const host = configNode<BioafHostNode>(RED, node, def.host, 'bioaf-host');
        const secrets = host.webhookSecrets();
        if (secrets.length === 0) {
          msg.statusCode = 500;
          msg.reason = 'no_secret';
          msg.payload = { error: 'no_secret' };
          send([null, msg]);
          throw new Error('no webhook signing secret is set in the bioaf-host config node (copy it from bioAF\'s webhook subscription)');
        }
        if (raw.length > maxBytes) return rejectWith('body_too_large', `body is ${raw.length} bytes; the limit is ${maxBytes}`);

        const check = verifySignature(raw, header(msg, SIGNATURE_HEADER), { secrets, toleranceSec: tolerance });
        if (!check.ok) return rejectWith(check.reason, check.message);

        let event: Record<string, unknown>;
        try {
          event = JSON.parse(raw.toString('utf8'));
        } catch {
          return rejectWith('invalid_json', 'the signed body is not JSON');
        }
        if (!event || typeof event !== 'object' || typeof event.id !== 'string' || !event.id) {
          return rejectWith('missing_event_id', 'the event has no "id"');
        }
        const deliveryId = header(msg, DELIVERY_HEADER);
        const eventKey = `e:${event.id}`;
        const deliveryKey = deliveryId ? `d:${deliveryId}` : undefined;
        // Same event again: an admin replay (new delivery id) or another subscription. Same
        // delivery again: a retry after our answer was lost. Either way, not passed on twice.
        if (seen.has(eventKey) || (deliveryKey && seen.has(deliveryKey))) {
          msg.deliveryId = deliveryId;
          msg.eventId = event.id;
          return rejectWith('duplicate', `event ${event.id} was already verified (delivery ${deliveryId ?? '?'})`);
        }
        seen.add(eventKey);
        if (deliveryKey) seen.add(deliveryKey);
        verified++;
        msg.payload = event;
        msg.deliveryId = deliveryId;
        msg.eventId = event.id;
        msg.event = typeof event.event === 'string' ? event.event : header(msg, EVENT_HEADER);
        msg.signatureTimestamp = check.t;
        send([msg, null]);
      },
      {
        doneStatus: (msg: Msg) => `${msg.reason ? `rejected: ${String(msg.reason)}` : 'verified'} (${verified} ok, ${rejected} rejected)`,
        onClose: () => {
          clearInterval(pruner);
          seen.close();
        },
      },
    );
  }
  RED.nodes.registerType('bioaf-webhook-verify', BioafWebhookVerify as never);
};
