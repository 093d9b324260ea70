/**
 * Tests import the process helpers from here. The code lives in support/gantry-process.ts, shared with bench/
 * (which must not import test/): change it there.
 */
export * from '../../support/gantry-process.js';
