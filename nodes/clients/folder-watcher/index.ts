export * from './folder-watcher';
export { compileGlob, parsePatternList, matchesAny, DEFAULT_TEMP_PATTERNS } from './glob';
export type { LedgerEntry, LedgerState } from './ledger';
