/**
 * Client-side validation of a Genie action's parameter values, before any command is sent.
 *
 * The action definition (`GET …/instruments/{uid}/actions/{name}`) lists typed parameters; this
 * module turns it into a JSON schema and validates the values with ajv. Rules, as documented:
 *   - type ∈ number / string / volume / time / file / json
 *   - `options`: the allowed values (an enum)
 *   - `min` / `max`: value bounds for number / volume / time, LENGTH bounds for string.
 *
 * UNCONFIRMED points and the choices made (safe for the user: reject rather than send a wrong
 * value to an instrument):
 *   - Whether a parameter may be left out is not documented. A parameter is required unless its
 *     definition says `required: false` or `optional: true`, or it has a `default`.
 *   - Time and volume value formats are not documented ("15s", "500"). Values are SENT EXACTLY AS
 *     GIVEN; for checking the bounds, a bare number is compared with min/max as is, and a number
 *     with a unit is converted to seconds (time) or µL (volume), the assumed default units.
 *   - How a `file` value travels is unknown: a non-empty string (id, path, content) or a JSON
 *     object/array (e.g. LabMate's `{"commands":[…]}`) is accepted and sent as given.
 *   - `json`: any JSON value; a string that looks like JSON text ({… or […) must parse.
 *   - A parameter type the docs do not list is sent as given, unchecked.
 */
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { LabError } from '../../lib/http/errors';
import { messageRef, type MessageKey, type MessageRef, type MessageVars } from '../../lib/messages';
import type { GenieAction, GenieCommandValue, GenieParameter } from './types';
import { isReservedKey, refuseReservedKeys, reservedKeyError } from '../../lib/reserved-keys';

export type ValuesInput =
  | Record<string, unknown>
  | Array<{ parameterId?: string; id?: string; name?: string; value: unknown }>
  | undefined
  | null;

const TIME_UNITS: Record<string, number> = {
  ms: 0.001,
  s: 1,
  sec: 1,
  secs: 1,
  second: 1,
  seconds: 1,
  m: 60,
  min: 60,
  mins: 60,
  minute: 60,
  minutes: 60,
  h: 3600,
  hr: 3600,
  hrs: 3600,
  hour: 3600,
  hours: 3600,
  d: 86400,
  day: 86400,
  days: 86400,
};

const VOLUME_UNITS: Record<string, number> = { nl: 0.001, ul: 1, 'µl': 1, 'μl': 1, ml: 1000, l: 1_000_000 };

/** A time value in seconds: 90, "90", "15s", "2 min", "1h30m", "00:01:30". NaN if unreadable. */
export function timeSeconds(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : NaN;
  if (typeof v !== 'string') return NaN;
  const s = v.trim().toLowerCase();
  if (s === '') return NaN;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const clock = /^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(s);
  if (clock) return Number(clock[1] ?? 0) * 3600 + Number(clock[2]) * 60 + Number(clock[3]);
  const re = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    const unit = TIME_UNITS[m[2]];
    if (unit === undefined) return NaN;
    total += Number(m[1]) * unit;
    matched = re.lastIndex;
  }
  return matched === s.length && matched > 0 ? total : NaN;
}

/** A volume value in µL: 500, "500", "500 uL", "0.5 mL". NaN if unreadable. */
export function volumeMicroliters(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : NaN;
  if (typeof v !== 'string') return NaN;
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zµμ]*)\s*$/i.exec(v);
  if (!m) return NaN;
  if (!m[2]) return Number(m[1]);
  const unit = VOLUME_UNITS[m[2].toLowerCase()];
  return unit === undefined ? NaN : Number(m[1]) * unit;
}

function bound(p: GenieParameter, which: 'min' | 'max'): number | undefined {
  const raw = p[which];
  if (raw === undefined || raw === null || raw === '') return undefined;
  const n = p.type === 'time' ? timeSeconds(raw) : p.type === 'volume' ? volumeMicroliters(raw) : Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

function isRequired(p: GenieParameter): boolean {
  return !(p.required === false || p.optional === true || p.default !== undefined);
}

/** The JSON schema for one parameter. */
export function parameterSchema(p: GenieParameter): Record<string, unknown> {
  const min = bound(p, 'min');
  const max = bound(p, 'max');
  const s: Record<string, unknown> = {};
  switch (p.type) {
    case 'number':
      s.type = 'number';
      if (min !== undefined) s.minimum = min;
      if (max !== undefined) s.maximum = max;
      break;
    case 'string':
      s.type = 'string';
      if (min !== undefined) s.minLength = min;
      if (max !== undefined) s.maxLength = max;
      break;
    case 'time':
    case 'volume':
      s.type = ['number', 'string'];
      s.genieQuantity = { kind: p.type, ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
      break;
    case 'file':
      s.type = ['string', 'object', 'array'];
      s.minLength = 1;
      break;
    case 'json':
      s.genieJson = true;
      break;
    default:
      break; // a type the docs do not list: sent as given
  }
  if (Array.isArray(p.options) && p.options.length > 0) {
    s.enum = p.type === 'number' ? p.options.map((o) => (typeof o === 'string' && o.trim() !== '' && Number.isFinite(Number(o)) ? Number(o) : o)) : p.options;
  }
  return s;
}

/** The JSON schema for an action's values, keyed by parameter id. */
export function actionSchema(action: GenieAction): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const p of action.parameters ?? []) {
    properties[p.id] = parameterSchema(p);
    if (isRequired(p)) required.push(p.id);
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addKeyword({
    keyword: 'genieQuantity',
    errors: true,
    validate: function check(this: unknown, sch: { kind: 'time' | 'volume'; min?: number; max?: number }, data: unknown) {
      const self = check as unknown as { errors?: Array<Partial<ErrorObject>> };
      const n = sch.kind === 'time' ? timeSeconds(data) : volumeMicroliters(data);
      const unit = sch.kind === 'time' ? 's' : 'µL';
      // The problem's message id and values; describeRule words it.
      let problem: 'timeFormat' | 'volumeFormat' | 'negative' | 'quantityMin' | 'quantityMax' | undefined;
      let limit: number | undefined;
      if (!Number.isFinite(n)) problem = sch.kind === 'time' ? 'timeFormat' : 'volumeFormat';
      else if (n < 0) problem = 'negative';
      else if (sch.min !== undefined && n < sch.min) [problem, limit] = ['quantityMin', sch.min];
      else if (sch.max !== undefined && n > sch.max) [problem, limit] = ['quantityMax', sch.max];
      if (!problem) return true;
      self.errors = [{ keyword: 'genieQuantity', params: { problem, limit, unit, value: String(JSON.stringify(data)) } }];
      return false;
    },
  });
  ajv.addKeyword({
    keyword: 'genieJson',
    errors: true,
    validate: function check(this: unknown, _sch: unknown, data: unknown) {
      const self = check as unknown as { errors?: Array<Partial<ErrorObject>> };
      if (data === undefined) return true;
      if (typeof data === 'string' && /^\s*[[{]/.test(data)) {
        try {
          JSON.parse(data);
        } catch {
          self.errors = [{ keyword: 'genieJson', params: { rule: 'json' } }];
          return false;
        }
      }
      return true;
    },
  });
  return ajv;
}

let sharedAjv: Ajv | undefined;
const compiled = new WeakMap<GenieAction, ValidateFunction>();

function validatorFor(action: GenieAction): ValidateFunction {
  let v = compiled.get(action);
  if (!v) {
    sharedAjv ??= newAjv();
    v = sharedAjv.compile(actionSchema(action));
    compiled.set(action, v);
  }
  return v;
}

/**
 * One parameter's problem, as a part of the message that lists them all (`genie.invalidValues`),
 * told in the same language as that message.
 */
function problem(key: string, vars: MessageVars = {}): MessageRef {
  return messageRef(`genie.problem.${key}` as MessageKey, vars);
}

function describeRule(p: GenieParameter, e: ErrorObject): MessageRef {
  const params = e.params as Record<string, unknown>;
  const param = label(p);
  switch (e.keyword) {
    case 'type': {
      if (p.type === 'number') return problem('typeNumber', { param, type: p.type });
      if (p.type === 'string') return problem('typeText', { param, type: p.type });
      const types = String(params.type)
        .split(',')
        .map((x): string | MessageRef => x)
        .reduce((first, second) => problem('typeAlternative', { first, second }));
      return problem('typeOther', { param, types, type: p.type });
    }
    case 'minimum':
      return problem('min', { param, limit: String(params.limit) });
    case 'maximum':
      return problem('max', { param, limit: String(params.limit) });
    case 'minLength':
      return p.type === 'file' ? problem('fileEmpty', { param }) : problem('minLength', { param, limit: String(params.limit) });
    case 'maxLength':
      return problem('maxLength', { param, limit: String(params.limit) });
    case 'enum':
      return problem('options', { param, options: (p.options ?? []).map((o) => JSON.stringify(o)).join(', ') });
    case 'genieQuantity':
      return problem(String(params.problem), {
        param,
        type: p.type,
        value: String(params.value),
        unit: String(params.unit),
        ...(params.limit !== undefined ? { limit: String(params.limit) } : {}),
      });
    case 'genieJson':
      return problem('invalidJson', { param });
    default:
      // ajv's own wording of a rule this module does not know.
      return e.message ? problem('other', { param, message: e.message, rule: e.keyword }) : problem('otherInvalid', { param, rule: e.keyword });
  }
}

/** A parameter as the messages name it: its name, or its id when it has no other name. */
function label(p: GenieParameter): string {
  return p.name && p.name !== p.id ? p.name : p.id;
}

/**
 * Maps the values given (an object keyed by parameter id or name, or a list of
 * `{parameterId|id|name, value}`) onto the action's parameters, coerces numeric text for number
 * parameters, and validates. Returns the values to send (keyed by parameter id, in the action's
 * order), or throws a BAD_INPUT LabError naming every offending parameter and rule.
 */
export function validateValues(action: GenieAction, input: ValuesInput): GenieCommandValue[] {
  refuseReservedKeys(input, 'values');
  const params = action.parameters ?? [];
  const byId = new Map(params.map((p) => [p.id, p]));
  const byName = new Map(params.map((p) => [p.name, p]));
  const problems: MessageRef[] = [];
  const given = new Map<string, unknown>();

  const entries: Array<[string, unknown]> = [];
  if (Array.isArray(input)) {
    for (const item of input) {
      const key = item && typeof item === 'object' ? item.parameterId ?? item.id ?? item.name : undefined;
      if (typeof key !== 'string') problems.push(problem('listItemWithoutId', { item: String(JSON.stringify(item)) }));
      else entries.push([key, item.value]);
    }
  } else if (input !== undefined && input !== null) {
    if (typeof input !== 'object') throw new LabError('BAD_INPUT', 'genie.valuesNotObject', { action: action.action, type: typeof input });
    entries.push(...Object.entries(input));
  }

  for (const [key, value] of entries) {
    const p = byId.get(key) ?? byName.get(key);
    if (!p) {
      const names = params.map((q) => q.name || q.id).join(', ');
      problems.push(names ? problem('unknownParameter', { key, names }) : problem('unknownParameterNone', { key }));
      continue;
    }
    if (value === undefined || value === null || value === '') continue; // treated as not given
    if (given.has(p.id)) {
      problems.push(problem('givenTwice', { param: label(p) }));
      continue;
    }
    let v = value;
    if (p.type === 'number' && typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v);
    given.set(p.id, v);
  }
  // Documented defaults are not filled in: the server applies its own (UNCONFIRMED).

  const obj = Object.fromEntries(given);
  const validate = validatorFor(action);
  if (!validate(obj)) {
    for (const e of validate.errors ?? []) {
      if (e.keyword === 'required') {
        const p = byId.get(String((e.params as { missingProperty: string }).missingProperty));
        if (p) problems.push(problem('missing', { param: label(p) }));
        continue;
      }
      if (e.keyword === 'additionalProperties') continue; // reported above as unknown
      const id = (e.instancePath.split('/')[1] ?? '').replace(/~1/g, '/').replace(/~0/g, '~');
      const p = byId.get(id);
      if (!p) continue;
      // With a union type, ajv reports "type" next to the real reason; keep one line per parameter.
      problems.push(describeRule(p, e));
    }
  }
  if (problems.length) {
    const unique = [...new Map(problems.map((p) => [JSON.stringify(p), p])).values()];
    throw new LabError('BAD_INPUT', 'genie.invalidValues', { action: action.action, problems: unique });
  }
  return params.filter((p) => given.has(p.id)).map((p) => ({ parameterId: p.id, value: given.get(p.id) }));
}

/**
 * The dialog's values (text from the form, keyed by parameter id) overlaid by the msg's values
 * (keyed by id or name, or a list). Empty dialog fields count as not given; dialog text for a
 * `json` parameter is parsed when it is valid JSON. Keys that match no parameter are kept so
 * validateValues reports them.
 */
export function mergeValues(action: GenieAction, dialog: Record<string, unknown> | undefined, fromMsg: ValuesInput): Record<string, unknown> {
  const params = action.parameters ?? [];
  // `__proto__` / `constructor` / `prototype` as a key (own, from JSON, or a prototype set by an
  // object literal), in msg.values or in a json value inside it, is refused naming the key —
  // before, `out[key] = v` set the prototype and the value vanished without a word.
  refuseReservedKeys(fromMsg, 'msg.values');
  refuseReservedKeys(dialog, 'params');
  const resolve = (key: string) => (params.find((p) => p.id === key) ?? params.find((p) => p.name === key))?.id ?? key;
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(dialog ?? {})) {
    if (raw === undefined || raw === null || raw === '') continue;
    const id = resolve(key);
    const p = params.find((q) => q.id === id);
    let v = raw;
    if (p?.type === 'json' && typeof v === 'string') {
      try {
        v = JSON.parse(v);
      } catch {
        /* left as text: validation reports it */
      }
    }
    out[id] = v;
  }
  if (Array.isArray(fromMsg)) {
    for (const item of fromMsg) {
      const key = item && typeof item === 'object' ? item.parameterId ?? item.id ?? item.name : undefined;
      if (typeof key === 'string' && isReservedKey(key)) throw reservedKeyError('msg.values', key);
      if (typeof key === 'string') out[resolve(key)] = item.value;
      else throw new LabError('BAD_INPUT', 'genie.msgValueWithoutId', { action: action.action, item: String(JSON.stringify(item)) });
    }
  } else if (fromMsg !== undefined && fromMsg !== null) {
    if (typeof fromMsg !== 'object') throw new LabError('BAD_INPUT', 'genie.msgValuesNotObject', { action: action.action, type: typeof fromMsg });
    for (const [key, v] of Object.entries(fromMsg)) out[resolve(key)] = v;
  }
  return out;
}
