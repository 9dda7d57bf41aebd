/**
 * `bioaf-webhook-verify`: placed after a core HTTP In node with "skip body parsing" (Node-RED
 * ≥ 4.1), checks a bioAF webhook delivery — signature over the exact bytes with every configured
 * secret, timestamp window, size — and drops repeats (event id and delivery id, remembered on
 * disk across restarts). Output 1: the verified event; output 2: everything rejected, with
 * msg.statusCode set for an HTTP Response node.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { BioafHostNode } from './lib/config-nodes';
import { configNode, handleInput, translator, type Msg } from './lib/node-red';
import { LabError } from './lib/http/errors';
import { stateFilePath } from './lib/journal';
import { Settings } from './lib/settings';
import {
  DEFAULT_TOLERANCE_SEC,
  DELIVERY_HEADER,
  EVENT_HEADER,
  reject,
  SeenStore,
  SIGNATURE_HEADER,
  verifySignature,
  type Rejection,
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
    const t = translator(RED, 'bioaf-webhook-verify');
    const settings = new Settings(RED, node).uses(def.host, 'bioaf-host');
    const tolerance = settings.seconds(t('label.tolerance'), def.tolerance, { default: DEFAULT_TOLERANCE_SEC, min: 0, above: true }) / 1000;
    const maxBytes = settings.integer(t('label.maxBytes'), def.maxBytes, { default: DEFAULT_MAX_BYTES, min: 1 });
    const retentionMs = settings.hours(t('label.retentionHours'), def.retentionHours, { default: DEFAULT_RETENTION_HOURS, min: 0, above: true });
    const seen = new SeenStore(stateFilePath(RED.settings.userDir as string, 'bioaf-webhook-verify', node.id), retentionMs);
    const pruner = setInterval(() => seen.prune(), Math.min(retentionMs, 3600_000));
    pruner.unref();
    let verified = 0;
    let rejected = 0;

    handleInput(
      RED,
      node,
      async ({ msg, send }) => {
        const rejectWith = (r: Rejection) => {
          rejected++;
          msg.statusCode = r.status;
          msg.reason = r.reason;
          msg.reasonText = t.shared(`errors.${r.key}`, r.vars);
          msg.payload = { error: r.reason };
          send([null, msg]);
        };

        const raw = msg.payload;
        if (!Buffer.isBuffer(raw)) {
          // The request must still be answered, so the message also goes out on output 2.
          msg.statusCode = 500;
          msg.reason = 'body_parsed';
          msg.payload = { error: 'body_parsed' };
          send([null, msg]);
          throw new LabError('BAD_INPUT', 'bioaf.bodyParsed');
        }
        const host = configNode<BioafHostNode>(RED, node, def.host, 'bioaf-host');
        const secrets = host.webhookSecrets();
        if (secrets.length === 0) {
          msg.statusCode = 500;
          msg.reason = 'no_secret';
          msg.payload = { error: 'no_secret' };
          send([null, msg]);
          throw new LabError('BAD_INPUT', 'bioaf.noWebhookSecret');
        }
        if (raw.length > maxBytes) return rejectWith(reject('body_too_large', 'bioaf.webhook.bodyTooLarge', { size: raw.length, max: maxBytes }));

        const check = verifySignature(raw, header(msg, SIGNATURE_HEADER), { secrets, toleranceSec: tolerance });
        if (!check.ok) return rejectWith(check);

        let event: Record<string, unknown>;
        try {
          event = JSON.parse(raw.toString('utf8'));
        } catch {
          return rejectWith(reject('invalid_json', 'bioaf.webhook.invalidJson'));
        }
        if (!event || typeof event !== 'object' || typeof event.id !== 'string' || !event.id) {
          return rejectWith(reject('missing_event_id', 'bioaf.webhook.missingEventId'));
        }
        const deliveryId = header(msg, DELIVERY_HEADER);
        const eventKey = `e:${event.id}`;
        const deliveryKey = deliveryId ? `d:${deliveryId}` : undefined;
        // Same event again: an admin replay (new delivery id) or another subscription. Same
        // delivery again: a retry after our answer was lost. Either way, not passed on twice.
        if (seen.has(eventKey) || (deliveryKey && seen.has(deliveryKey))) {
          msg.deliveryId = deliveryId;
          msg.eventId = event.id;
          return rejectWith(reject('duplicate', 'bioaf.webhook.duplicate', { event: event.id, delivery: deliveryId ?? '?' }));
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
        settings,
        // The request must still be answered: the message also goes out on output 2.
        onSettingsProblem: (msg, send) => {
          msg.statusCode = 500;
          msg.reason = 'bad_settings';
          msg.payload = { error: 'bad_settings' };
          send([null, msg]);
        },
        doneStatus: (msg: Msg) =>
          msg.reason ? t('status.rejected', { reason: String(msg.reason), verified, rejected }) : t('status.verified', { verified, rejected }),
        onClose: () => {
          clearInterval(pruner);
          seen.close();
        },
      },
    );
  }
  RED.nodes.registerType('bioaf-webhook-verify', BioafWebhookVerify as never);
};
