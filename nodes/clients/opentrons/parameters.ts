/**
 * Runtime parameters checked against what the protocol declares (the analysis's
 * `runTimeParameters`: type, min, max, choices) before anything runs — the robot itself answers a
 * bad value with a 500 (reference §2.3) — and the CSV parameter files (8.0+, §2.9): where a file
 * comes from (a path, a Buffer with a name, or the message `benchling-generate-input` produced).
 */
import * as path from 'path';
import { LabError } from '../../lib/http/errors';
import type { FileSource } from './multipart';
import type { RunTimeParameter } from './types';

/** A CSV parameter's file as the caller gives it, by the parameter's variable name. */
export type ParameterFiles = Record<string, FileSource>;

const bad = (key: ConstructorParameters<typeof LabError>[1], vars: ConstructorParameters<typeof LabError>[2] = {}) => new LabError('BAD_INPUT', key, vars);

/**
 * `msg.runTimeParameterFiles` → file sources: each value a file path, a Buffer (named after the
 * parameter), `{name, data}`, `{path}`, or a message from `benchling-generate-input` (`payload`
 * Buffer + `filename`, or `payload` = the path it saved the file to).
 */
export function parameterFileSources(raw: unknown): ParameterFiles | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw) || Buffer.isBuffer(raw)) throw bad('ot2.runParams.filesNotObject');
  const out: ParameterFiles = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const o = v as Record<string, unknown> | null;
    if (typeof v === 'string' && v.trim()) out[name] = { path: v.trim() };
    else if (Buffer.isBuffer(v)) out[name] = { name: `${name}.csv`, data: v };
    else if (o && typeof o === 'object' && Buffer.isBuffer(o.data)) out[name] = { name: String(o.name ?? `${name}.csv`), data: o.data };
    else if (o && typeof o === 'object' && typeof o.path === 'string') out[name] = { path: o.path };
    else if (o && typeof o === 'object' && Buffer.isBuffer(o.payload)) out[name] = { name: path.basename(String(o.filename ?? `${name}.csv`)), data: o.payload };
    else if (o && typeof o === 'object' && typeof o.payload === 'string' && o.payload.trim()) out[name] = { path: o.payload.trim() };
    else throw bad('ot2.runParams.fileInvalid', { name });
  }
  return Object.keys(out).length ? out : undefined;
}

function names(list: RunTimeParameter[]): string {
  return list.map((p) => p.variableName).join(', ');
}

/** Each file must be for a CSV parameter the protocol declares; each declared CSV parameter needs a file. */
export function checkParameterFiles(declared: RunTimeParameter[], given: string[]): void {
  const csv = declared.filter((p) => p.type === 'csv_file');
  for (const name of given) {
    if (csv.some((p) => p.variableName === name)) continue;
    throw csv.length ? bad('ot2.runParams.csvUnknown', { name, params: names(csv) }) : bad('ot2.runParams.csvUnknownNone', { name });
  }
  const missing = csv.filter((p) => !given.includes(p.variableName));
  if (missing.length) throw bad('ot2.runParams.csvMissing', { params: names(missing) });
}

/** Each value must be for a declared non-CSV parameter, of its type, within its range or among its choices. */
export function checkParameterValues(declared: RunTimeParameter[], values: Record<string, unknown>): void {
  const plain = declared.filter((p) => p.type !== 'csv_file');
  for (const [name, value] of Object.entries(values)) {
    const d = declared.find((p) => p.variableName === name);
    if (!d) throw plain.length ? bad('ot2.runParams.unknown', { name, params: names(plain) }) : bad('ot2.runParams.unknownNone', { name });
    if (d.type === 'csv_file') throw bad('ot2.runParams.isCsv', { name });
    const shown = JSON.stringify(value) ?? String(value);
    if (d.type === 'bool' && typeof value !== 'boolean') throw bad('ot2.runParams.notBoolean', { name, value: shown });
    if (d.type === 'str' && typeof value !== 'string') throw bad('ot2.runParams.notString', { name, value: shown });
    if (d.type === 'int' && !(typeof value === 'number' && Number.isInteger(value))) throw bad('ot2.runParams.notInteger', { name, value: shown });
    if (d.type === 'float' && !(typeof value === 'number' && Number.isFinite(value))) throw bad('ot2.runParams.notNumber', { name, value: shown });
    if (Array.isArray(d.choices) && d.choices.length && !d.choices.some((c) => c.value === value)) {
      throw bad('ot2.runParams.notAChoice', { name, value: shown, choices: d.choices.map((c) => JSON.stringify(c.value)).join(', ') });
    }
    if (typeof value === 'number' && typeof d.min === 'number' && typeof d.max === 'number' && (value < d.min || value > d.max)) {
      throw bad('ot2.runParams.outOfRange', { name, value: shown, min: d.min, max: d.max });
    }
  }
}

/** `major.minor` of a version string, or undefined (a development build's "0.0.0-dev" counts as unknown). */
export function softwareVersion(v: string): [number, number] | undefined {
  const m = /^\s*(\d+)\.(\d+)/.exec(v);
  if (!m || (m[1] === '0' && m[2] === '0')) return undefined;
  return [Number(m[1]), Number(m[2])];
}
