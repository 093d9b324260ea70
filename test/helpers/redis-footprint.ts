/** Tests import the Redis footprint helpers from here; the code lives in support/redis-footprint.ts (shared with bench/). */
export * from '../../support/redis-footprint.js';
