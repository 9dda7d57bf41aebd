export * from './classify';
export * from './policy';
export * from './journey';
export * from './history';
export * from './registry';
export * from './links';
export * from './history-index';
export * from './query';
