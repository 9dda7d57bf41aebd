/**
 * Labware offsets on `POST /runs` (5.0+, reference §2.3, §2.9): checked in the robot's own shape
 * (definitionUri, location.slotName, vector x/y/z), or taken from the most recent run of the same
 * protocol on this robot — so offsets measured with Labware Position Check in the Opentrons App
 * carry over to runs started over HTTP.
 */
import { LabError } from '../../lib/http/errors';
import type { OpentronsClient } from './client';
import type { LabwareOffsetCreate, Protocol } from './types';

type Opts = { signal?: AbortSignal };

/** `msg.labwareOffsets` → the request's offsets; a clear error naming the first bad entry. */
export function labwareOffsets(raw: unknown): LabwareOffsetCreate[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw new LabError('BAD_INPUT', 'ot2.runParams.offsetsNotArray');
  return raw.map((o, i) => {
    const x = o as Record<string, any>;
    const v = x?.vector;
    const ok =
      x && typeof x === 'object' && typeof x.definitionUri === 'string' && x.definitionUri && typeof x.location?.slotName === 'string' && v && ['x', 'y', 'z'].every((k) => typeof v[k] === 'number' && Number.isFinite(v[k]));
    if (!ok) throw new LabError('BAD_INPUT', 'ot2.runParams.offsetInvalid', { n: i + 1 });
    const location: LabwareOffsetCreate['location'] = { slotName: x.location.slotName };
    if (typeof x.location.moduleModel === 'string') location.moduleModel = x.location.moduleModel;
    if (typeof x.location.definitionUri === 'string') location.definitionUri = x.location.definitionUri;
    return { definitionUri: x.definitionUri, location, vector: { x: v.x, y: v.y, z: v.z } };
  });
}

/** The same protocol: the same main file name, or the same protocolName in its metadata. */
function sameProtocol(a: Protocol, b: Protocol): boolean {
  const main = (p: Protocol) => p.files?.find((f) => f.role === 'main')?.name;
  const name = (p: Protocol) => (typeof p.metadata?.protocolName === 'string' ? (p.metadata.protocolName as string) : undefined);
  return (!!main(a) && main(a) === main(b)) || (!!name(a) && name(a) === name(b));
}

/**
 * The offsets of the most recent run (newest first) of the same protocol that has any, with that
 * run's id; undefined when the robot keeps no such run (it keeps the last 20 runs, §2.1).
 */
export async function offsetsOfRecentRun(client: OpentronsClient, protocol: Protocol, o: Opts = {}): Promise<{ runId: string; offsets: LabwareOffsetCreate[] } | undefined> {
  const runs = (await client.listRuns({ pageLength: 20, ...o })).filter((r) => r.ok !== false && r.protocolId && r.protocolId !== protocol.id && r.labwareOffsets?.length);
  runs.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const seen = new Map<string, Protocol | null>();
  for (const run of runs) {
    const id = run.protocolId!;
    if (!seen.has(id)) {
      seen.set(
        id,
        await client.getProtocol(id, o).catch((err) => {
          if (err instanceof LabError && err.status === 404) return null;
          throw err;
        }),
      );
    }
    const p = seen.get(id);
    if (p && sameProtocol(p, protocol)) {
      return { runId: run.id, offsets: run.labwareOffsets!.map((x) => ({ definitionUri: x.definitionUri, location: x.location, vector: x.vector })) };
    }
  }
  return undefined;
}
