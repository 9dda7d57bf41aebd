/**
 * Where the nodes of one Node-RED find the journeys: each watcher registers under its node id, and
 * a node that handles a file's message (it carries `msg.labwireFile` with the watcher's id and the
 * journey id) tells the journey what it did — the blob, the processor, the task — so one record
 * holds the file's whole path. Finished journeys are announced, so nodes can forget their own
 * per-file state for them (memory stays flat as history grows).
 */
import { EventEmitter } from 'events';
import type { JourneyRecord, JourneySteps } from './journey';

export interface JourneyOwner {
  /** Adds what a node did to the journey `journeyId`; ignored when the journey is not live. */
  note(journeyId: string, steps: JourneySteps): void;
  /** Live journeys (relative path → record), for readers such as the metrics; optional. */
  journeys?(): Iterable<[string, JourneyRecord]>;
  /** Finished journeys kept in the history (a file gone before done carries `gone`); optional. */
  finishedJourneys?(): Iterable<JourneyRecord & { gone?: number }>;
  /** `pending`: files seen and waiting to hold still before they are sent; optional. */
  getStatus?(): { pending: number };
}

/** What the operator's view shows of an owner (the node's name). */
export interface JourneyOwnerInfo {
  name?: string;
}

interface Owned {
  owner: JourneyOwner;
  info: JourneyOwnerInfo;
}

const owners = new Map<string, Owned>();

/**
 * `finished` (journeyId: string, record): a journey reached done (processed or skipped); per-file
 * state kept for it may go. The record is the journey as it ended, with `relativePath`, `path`
 * and `folder` (what the history keeps).
 */
export const journeyEvents = new EventEmitter();
journeyEvents.setMaxListeners(0);

/**
 * Registers a watcher's journeys under its node id; returns the unregister function. An owner that
 * emits `journey` (journeyId) events has them re-announced as `changed` (ownerId, journeyId) on
 * `journeyEvents`, for the operator's view; `owners` (ownerId) is emitted when owners come or go.
 */
export function registerJourneyOwner(ownerId: string, owner: JourneyOwner, info: JourneyOwnerInfo = {}): () => void {
  owners.set(ownerId, { owner, info });
  const emitter = owner as Partial<EventEmitter>;
  const onJourney = (journeyId: string): void => void journeyEvents.emit('changed', ownerId, journeyId);
  if (typeof emitter.on === 'function') emitter.on.call(owner, 'journey', onJourney);
  journeyEvents.emit('owners', ownerId);
  return () => {
    if (typeof emitter.off === 'function') emitter.off.call(owner, 'journey', onJourney);
    if (owners.get(ownerId)?.owner === owner) {
      owners.delete(ownerId);
      journeyEvents.emit('owners', ownerId);
    }
  };
}

/** The registered owners: [node id, owner, info]. */
export function journeyOwners(): Array<[string, JourneyOwner, JourneyOwnerInfo]> {
  return [...owners].map(([id, o]) => [id, o.owner, o.info]);
}

/** The journey a message belongs to: `msg.labwireFile.{watcher, id}`, when present. */
export function journeyOf(msg: Record<string, unknown>): { watcher: string; id: string } | undefined {
  const lf = msg.labwireFile as { watcher?: unknown; id?: unknown } | undefined;
  if (!lf || typeof lf !== 'object' || typeof lf.watcher !== 'string' || typeof lf.id !== 'string') return undefined;
  return { watcher: lf.watcher, id: lf.id };
}

/** Tells the message's journey (if it has one) what a node did. Never throws: a note is a record, not the work. */
export function noteJourney(msg: Record<string, unknown>, steps: JourneySteps): void {
  const j = journeyOf(msg);
  if (!j) return;
  try {
    owners.get(j.watcher)?.owner.note(j.id, steps);
  } catch {
    /* the journey's own state is not the node's concern */
  }
}
