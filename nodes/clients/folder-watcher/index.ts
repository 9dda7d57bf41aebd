export { FolderWatcher } from './folder-watcher';
export { isUncPath } from './types';
export type {
  AckResult,
  FileRef,
  FolderWatcherOptions,
  JourneyHistoryRecord,
  PostAction,
  WatchedFile,
  WatcherPhase,
  WatcherStatus,
  WatchMode,
} from './types';
export { compileGlob, parsePatternList, matchesAny, DEFAULT_TEMP_PATTERNS } from './glob';
export type { LedgerEntry, LedgerState } from './ledger';
