/**
 * A node's per-file journal records (the upload's blob id, the processor and its task) are needed
 * only while the file's journey is live: once it is done, its history holds the ids. So a node
 * links each record to the journey of the message it handled, and the record goes when the journey
 * finishes — the node's journal, loaded into memory at every start, stays as small as the work in
 * flight however many files went through. Records whose link was lost (a restart in between) fall
 * to the journal's retention instead.
 */
import { journeyEvents, journeyOf } from './registry';

export class JourneyLinks {
  private readonly keysByJourney = new Map<string, Set<string>>();
  private readonly onFinished = (journeyId: string): void => {
    const keys = this.keysByJourney.get(journeyId);
    if (!keys) return;
    this.keysByJourney.delete(journeyId);
    for (const k of keys) this.forget(k);
  };

  constructor(private readonly forget: (key: string) => void) {
    journeyEvents.on('finished', this.onFinished);
  }

  /** Ties the record `key` to the journey of `msg` (no journey: nothing to tie to). */
  link(msg: Record<string, unknown>, key: string | undefined): void {
    const j = journeyOf(msg);
    if (!j || !key) return;
    let keys = this.keysByJourney.get(j.id);
    if (!keys) this.keysByJourney.set(j.id, (keys = new Set()));
    keys.add(key);
  }

  close(): void {
    journeyEvents.off('finished', this.onFinished);
    this.keysByJourney.clear();
  }
}
