/**
 * `bioaf-upsert`: writes one LIMS record (project / experiment / sample) to bioAF by its external
 * id — created when missing, PATCHed with only what changed, left alone when nothing did — and
 * reads records back (lookup by external id, or a filtered list with cursor paging). The work is
 * done by the bioAF client (nodes/clients/bioaf); this node maps settings and msg to it.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { BioafHostNode } from './lib/config-nodes';
import { configNode, handleInput, requireString, translator, waitStatus, type Msg } from './lib/node-red';
import { badInput } from './lib/http/errors';
import { findReservedKey, refuseReservedKeys } from './lib/reserved-keys';
import { Settings } from './lib/settings';
import { BioafClient, RESOURCES, type Resource, type Step } from './clients/bioaf/client';

interface UpsertDef extends NodeDef {
  host: string;
  mode?: 'upsert' | 'lookup' | 'list';
  resource: Resource;
  externalId: string;
  externalIdType: string;
  pageSize?: string | number;
  allPages?: boolean;
  maxItems?: string | number;
}

type Filters = Record<string, string | number | boolean | undefined>;

/** msg.payload as list filters; LIMS ids of a parent are resolved to bioAF ids. */
async function listFilters(client: BioafClient, resource: Resource, payload: unknown, signal: AbortSignal): Promise<Filters> {
  if (payload === undefined || payload === null || payload === '') return {};
  if (typeof payload === 'object' && !Array.isArray(payload) && Object.keys(payload).length === 0 && !findReservedKey(payload, 'msg.payload')) return {};
  if (typeof payload !== 'object' || Array.isArray(payload)) throw badInput('bioaf.listPayloadNotObject');
  refuseReservedKeys(payload, 'msg.payload');
  const allowed: Record<Resource, string[]> = {
    project: ['status', 'external_id', 'q'],
    experiment: ['project_id', 'project_external_id', 'status', 'external_id', 'q'],
    sample: ['experiment_id', 'experiment_external_id', 'external_id', 'q'],
  };
  const filters: Filters = {};
  for (const [k, v] of Object.entries(payload as Record<string, unknown>)) {
    if (v === undefined || v === null || v === '') continue;
    if (!allowed[resource].includes(k)) throw badInput('bioaf.cannotFilter', { resource, filter: k, filters: allowed[resource].join(', ') });
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw badInput('bioaf.filterNotText', { filter: k });
    filters[k] = v;
  }
  for (const [ext, parent, idName] of [
    ['project_external_id', 'project', 'project_id'],
    ['experiment_external_id', 'experiment', 'experiment_id'],
  ] as const) {
    if (filters[ext] === undefined) continue;
    const rec = await client.findByExternal(parent, String(filters[ext]), undefined, { signal });
    if (!rec) throw badInput('bioaf.noParent', { resource: parent, id: String(filters[ext]) });
    filters[idName] = rec.id;
    delete filters[ext];
  }
  return filters;
}

export = function (RED: NodeAPI): void {
  function BioafUpsert(this: Node, def: UpsertDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'bioaf-upsert');
    const mode = def.mode ?? 'upsert';
    const resource = def.resource;
    const settings = new Settings(RED, node).uses(def.host, 'bioaf-host');
    const pageSize = settings.integer(t('label.pageSize'), def.pageSize, { default: 50, min: 1, max: 200 });
    const maxItems = settings.integer(t('label.maxItems'), def.maxItems, { default: 10_000, min: 1 });

    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        if (!RESOURCES.includes(resource)) throw badInput('bioaf.badResource', { value: String(JSON.stringify(resource)) });
        const host = configNode<BioafHostNode>(RED, node, def.host, 'bioaf-host');
        const client = host.client();
        const call = {
          signal,
          onWait: waitStatus(t, status),
          onStep: (step: Step, info?: { count: number }) => status('blue', t(`status.step.${step}`, info)),
        };

        if (mode === 'list') {
          status('blue', t(`status.listing.${resource}`));
          const filters = await listFilters(client, resource, msg.payload, signal);
          if (def.allPages) {
            const all = await client.listAll(resource, filters, { ...call, limit: pageSize, max: maxItems });
            msg.payload = all.items;
            msg.bioaf = { resource, action: 'listed', count: all.items.length, pages: all.pages, truncated: all.truncated };
          } else {
            const cursor = msg.cursor === undefined || msg.cursor === null || msg.cursor === '' ? undefined : String(msg.cursor);
            const page = await client.list(resource, filters, { ...call, cursor, limit: pageSize });
            msg.payload = page.items;
            msg.nextCursor = page.next_cursor;
            msg.bioaf = { resource, action: 'listed', count: page.items.length, nextCursor: page.next_cursor };
          }
          send(msg);
          return;
        }

        const externalId = await requireString(RED, node, t('label.externalId'), def.externalId || 'externalId', def.externalIdType || 'msg', msg);
        if (mode === 'lookup') {
          status('blue', t('status.step.looking-up'));
          refuseReservedKeys(msg.payload, 'msg.payload');
          const p = (msg.payload && typeof msg.payload === 'object' ? msg.payload : {}) as Record<string, unknown>;
          let experimentId: number | undefined;
          if (resource === 'sample') {
            if (p.experiment_id === undefined && p.experiment_external_id === undefined) {
              throw badInput('bioaf.lookupSampleNeedsExperiment');
            }
            experimentId = await client.resolveExperimentId(
              { experimentId: p.experiment_id === undefined ? undefined : Number(p.experiment_id), experimentExternalId: p.experiment_external_id as string | undefined },
              call,
            );
          }
          const record = await client.findByExternal(resource, externalId, experimentId, call);
          msg.payload = record ?? null;
          msg.bioaf = { resource, action: record ? 'found' : 'not_found', id: record?.id, externalId };
          send(msg);
          return;
        }

        const result = await client.upsert(resource, externalId, msg.payload, call);
        msg.payload = result.record;
        msg.bioaf = {
          resource,
          action: result.action,
          id: result.record.id,
          externalId,
          changed: result.changed,
          ...(result.replayed ? { replayed: true } : {}),
          ...(result.raced ? { raced: true } : {}),
        };
        send(msg);
      },
      {
        settings,
        doneStatus: (msg: Msg) => {
          const b = msg.bioaf as { action?: string; id?: number; count?: number } | undefined;
          if (!b) return t.shared('status.done');
          if (b.action === 'listed') return t(`status.listed.${resource}`, { count: Number(b.count) });
          // found, not_found, created, updated, unchanged
          return t(`status.result.${b.action}`, { id: String(b.id) });
        },
      },
    );
  }
  RED.nodes.registerType('bioaf-upsert', BioafUpsert as never);
};
