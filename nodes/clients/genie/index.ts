export * from './client';
export * from './schema';
export * from './types';
