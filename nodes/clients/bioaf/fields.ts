/**
 * What bioAF's Integration API accepts for each resource, as its code does it (see
 * shared/reference/bioaf-genie-api.md §1.3–1.6; the code wins where the docs disagree):
 * which fields a create takes, which a PATCH takes, which are read-only or immutable, and the
 * limits. The upsert plans its requests from this, so everything bioAF would refuse (or silently
 * drop) is refused here, naming the field, before any request is sent.
 */
import { badInput } from '../../lib/http/errors';
import type { MessageKey } from '../../lib/messages';
import { refuseReservedKeys } from '../../lib/reserved-keys';

export type Resource = 'project' | 'experiment' | 'sample';
export const RESOURCES: Resource[] = ['project', 'experiment', 'sample'];

/** URL segment of a resource (`/projects`, …). */
export function collection(resource: Resource): string {
  return `/${resource}s`;
}

type Kind = 'string' | 'text' | 'int' | 'object' | 'custom';

interface FieldSpec {
  kind: Kind;
  /** Longest accepted string (API check, or the narrower database column for samples). */
  max?: number;
  /** Accepted values (e.g. sample `assay`). */
  values?: string[];
  /** Required on create. */
  required?: boolean;
  /** Accepted on create only: changing it later is refused as immutable. */
  createOnly?: boolean;
}

const CUSTOM: FieldSpec = { kind: 'custom' };

/** Writable fields per resource (create and PATCH unless `createOnly`). */
export const FIELDS: Record<Resource, Record<string, FieldSpec>> = {
  project: {
    name: { kind: 'string', max: 255, required: true },
    description: { kind: 'text' },
    hypothesis: { kind: 'text' },
    custom_fields: CUSTOM,
  },
  experiment: {
    name: { kind: 'string', max: 255, required: true },
    hypothesis: { kind: 'text' },
    description: { kind: 'text' },
    expected_sample_count: { kind: 'int' },
    variables_json: { kind: 'object' },
    custom_fields: CUSTOM,
    project_id: { kind: 'int', createOnly: true },
    project_external_id: { kind: 'string', max: 255, createOnly: true },
  },
  sample: {
    // The Pydantic schema does not limit these; the database columns do (longer values would
    // fail as a 5xx), so the narrower column limits are checked here.
    organism: { kind: 'string', max: 100 },
    tissue_type: { kind: 'string', max: 100 },
    donor_source: { kind: 'string', max: 255 },
    treatment_condition: { kind: 'string', max: 255 },
    chemistry_version: { kind: 'string', max: 50 },
    prep_notes: { kind: 'text' },
    molecule_type: { kind: 'string', max: 100 },
    library_prep_method: { kind: 'string', max: 200 },
    cell_count: { kind: 'int' },
    assay: { kind: 'string', values: ['bulk_rna', 'scrna', 'other'] },
    custom_fields: CUSTOM,
  },
};

/**
 * Fields bioAF sets itself, with the message refusing each. `status` and `qc_status` have their
 * own workflow in bioAF.
 */
const READ_ONLY: Record<string, MessageKey> = {
  status: 'bioaf.readOnly.status',
  qc_status: 'bioaf.readOnly.qc_status',
  code: 'bioaf.readOnly.code',
  id: 'bioaf.readOnly.id',
  created_at: 'bioaf.readOnly.created_at',
  uuid: 'bioaf.readOnly.uuid',
};

export interface CustomField {
  field_name: string;
  field_value: string | null;
}

/** A validated write: the fields to set, and the scope the record lives in. */
export interface WritePlan {
  resource: Resource;
  externalId: string;
  fields: Record<string, unknown>;
  /** Samples: the experiment (bioAF id, or LIMS id to look up). */
  experimentId?: number;
  experimentExternalId?: string;
}

/** An external id, or an error (`error`: the message naming which external id is wrong). */
export function checkExternalId(
  externalId: string,
  error: 'bioaf.externalIdLength' | 'bioaf.experimentExternalIdLength' = 'bioaf.externalIdLength',
): string {
  if (typeof externalId !== 'string' || externalId.length < 1 || externalId.length > 255) {
    throw badInput(error, { value: String(JSON.stringify(externalId)?.slice(0, 40)) });
  }
  return externalId;
}

/** A sample's experiment_id: bioAF's numeric id. */
function experimentId(v: unknown): number {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw badInput('bioaf.experimentIdNotPositive', { value: String(JSON.stringify(v)) });
  return n;
}

/** `[{field_name, field_value}]` or `{name: value}` → the list bioAF takes. */
export function normaliseCustomFields(v: unknown, resource: Resource): CustomField[] {
  let list: Array<{ field_name?: unknown; field_value?: unknown }>;
  if (Array.isArray(v)) list = v;
  else if (v && typeof v === 'object') list = Object.entries(v).map(([field_name, field_value]) => ({ field_name, field_value }));
  else throw badInput('bioaf.customFieldsShape', { resource });
  const seen = new Set<string>();
  return list.map((cf) => {
    if (!cf || typeof cf !== 'object') throw badInput('bioaf.customFieldEntry', { resource });
    const name = cf.field_name;
    if (typeof name !== 'string' || name.length < 1 || name.length > 255) throw badInput('bioaf.customFieldName', { resource, value: String(JSON.stringify(name)) });
    if (seen.has(name)) throw badInput('bioaf.customFieldTwice', { resource, name });
    seen.add(name);
    let value = cf.field_value;
    if (typeof value === 'number' || typeof value === 'boolean') value = String(value);
    if (value === undefined) value = null;
    if (value !== null && typeof value !== 'string') throw badInput('bioaf.customFieldValue', { resource, name });
    return { field_name: name, field_value: value as string | null };
  });
}

function checkValue(resource: Resource, name: string, spec: FieldSpec, v: unknown): unknown {
  const field = { resource, field: name };
  if (v === null) {
    if (spec.required) throw badInput('bioaf.fieldNull', field);
    return null;
  }
  switch (spec.kind) {
    case 'string':
    case 'text':
      if (typeof v !== 'string') throw badInput('bioaf.fieldNotText', { ...field, type: typeof v });
      if (spec.required && v.length < 1) throw badInput('bioaf.fieldEmpty', field);
      if (spec.max && v.length > spec.max) throw badInput('bioaf.fieldTooLong', { ...field, length: v.length, max: spec.max });
      if (spec.values && !spec.values.includes(v)) throw badInput('bioaf.fieldNotOneOf', { ...field, values: spec.values.join(', '), value: JSON.stringify(v) });
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw badInput('bioaf.fieldNotInteger', { ...field, value: String(JSON.stringify(v)) });
      return v;
    case 'object':
      if (typeof v !== 'object' || Array.isArray(v)) throw badInput('bioaf.fieldNotObject', field);
      return v;
    case 'custom':
      return normaliseCustomFields(v, resource);
  }
}

/**
 * Checks msg.payload for a write and splits it into fields and scope. Refuses read-only fields,
 * a different external_id, unknown fields (bioAF would silently drop them, hiding a typo) and bad
 * values — all before any request.
 */
export function planWrite(resource: Resource, externalId: string, payload: unknown): WritePlan {
  checkExternalId(externalId);
  if (payload === undefined || payload === null) payload = {};
  if (typeof payload !== 'object' || Array.isArray(payload)) {
    throw Array.isArray(payload) ? badInput('bioaf.payloadIsArray', { resource }) : badInput('bioaf.payloadNotObject', { resource, type: typeof payload });
  }
  // `__proto__` / `constructor` / `prototype` anywhere in the record (own keys from JSON, or a
  // prototype set by an object literal) are refused, naming the key: never dropped silently.
  refuseReservedKeys(payload, 'msg.payload');
  const plan: WritePlan = { resource, externalId, fields: {} };
  const specs = FIELDS[resource];
  for (const [name, value] of Object.entries(payload as Record<string, unknown>)) {
    if (value === undefined) continue;
    if (Object.prototype.hasOwnProperty.call(READ_ONLY, name)) {
      if (value === null) continue; // bioAF tolerates an explicit null
      throw badInput(READ_ONLY[name], { resource });
    }
    if (name === 'external_id') {
      if (value !== externalId) {
        throw badInput('bioaf.externalIdImmutable', { resource, given: String(JSON.stringify(value)), externalId: JSON.stringify(externalId) });
      }
      continue;
    }
    if (resource === 'sample' && name === 'experiment_id') {
      plan.experimentId = experimentId(value);
      continue;
    }
    if (resource === 'sample' && name === 'experiment_external_id') {
      plan.experimentExternalId = checkExternalId(String(value), 'bioaf.experimentExternalIdLength');
      continue;
    }
    const spec = Object.prototype.hasOwnProperty.call(specs, name) ? specs[name] : undefined;
    if (!spec) {
      throw badInput('bioaf.noWritableField', { resource, field: name, writable: writableNames(resource).join(', ') });
    }
    plan.fields[name] = checkValue(resource, name, spec, value);
  }
  if (resource === 'sample' && plan.experimentId === undefined && plan.experimentExternalId === undefined) {
    throw badInput('bioaf.sampleNeedsExperiment');
  }
  if (resource === 'experiment' && plan.fields.project_id === null) delete plan.fields.project_id;
  if (resource === 'experiment' && plan.fields.project_external_id === null) delete plan.fields.project_external_id;
  return plan;
}

export function writableNames(resource: Resource): string[] {
  const extra = resource === 'sample' ? ['experiment_id', 'experiment_external_id'] : [];
  return [...Object.keys(FIELDS[resource]), ...extra];
}

/** The POST body of a create: external_id, scope and the non-null fields. */
export function createBody(plan: WritePlan, experimentId?: number): Record<string, unknown> {
  for (const [name, spec] of Object.entries(FIELDS[plan.resource])) {
    if (spec.required && (plan.fields[name] === undefined || plan.fields[name] === null)) {
      throw badInput('bioaf.createNeedsField', { resource: plan.resource, id: plan.externalId, field: name });
    }
  }
  const body: Record<string, unknown> = { external_id: plan.externalId };
  if (plan.resource === 'sample') body.experiment_id = experimentId;
  for (const [name, v] of Object.entries(plan.fields)) {
    if (v === null) continue;
    if (name === 'custom_fields') {
      const set = (v as CustomField[]).filter((cf) => cf.field_value !== null);
      if (set.length) body.custom_fields = set;
    } else body[name] = v;
  }
  return body;
}

/** Key-sorted JSON, for comparing objects and deriving idempotency keys. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

export interface PatchPlan {
  /** The PATCH body: only what differs from the record bioAF holds. */
  patch: Record<string, unknown>;
  changed: string[];
}

/**
 * What must change to bring `record` (as bioAF holds it) to the plan. Refuses what a PATCH cannot
 * do: changing a create-only field (re-parenting an experiment) or clearing a value (bioAF skips
 * nulls on PATCH).
 */
export function diffRecord(plan: WritePlan, record: Record<string, unknown>, resolvedProjectId?: number): PatchPlan {
  const patch: Record<string, unknown> = {};
  const changed: string[] = [];
  const which = { resource: plan.resource, id: plan.externalId };
  for (const [name, want] of Object.entries(plan.fields)) {
    const spec = FIELDS[plan.resource][name];
    if (name === 'project_id' || name === 'project_external_id') {
      const wantId = name === 'project_id' ? (want as number) : resolvedProjectId;
      if (wantId !== undefined && record.project_id !== wantId) {
        throw badInput('bioaf.projectImmutable', { ...which, field: name, project: JSON.stringify(record.project_id ?? null) });
      }
      continue;
    }
    if (spec?.createOnly) continue;
    if (name === 'custom_fields') {
      const have = new Map<string, string | null>();
      for (const cf of (record.custom_fields as CustomField[] | undefined) ?? []) have.set(cf.field_name, cf.field_value);
      const delta = (want as CustomField[]).filter((cf) => (cf.field_value === null ? have.has(cf.field_name) : have.get(cf.field_name) !== cf.field_value));
      if (delta.length) {
        patch.custom_fields = delta;
        changed.push(...delta.map((cf) => `custom_fields.${cf.field_name}`));
      }
      continue;
    }
    const have = record[name];
    if (want === null) {
      if (have === null || have === undefined) continue;
      throw badInput('bioaf.cannotClear', { ...which, field: name, value: JSON.stringify(have).slice(0, 60) });
    }
    const same = spec?.kind === 'object' ? canonicalJson(have) === canonicalJson(want) : have === want;
    if (!same) {
      patch[name] = want;
      changed.push(name);
    }
  }
  return { patch, changed };
}
