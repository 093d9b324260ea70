/** gpu-check's command line and environment, read once into one options object (see bench/gpu-check.ts). */

export type Device = 'cuda' | 'cpu';

export interface GpuCheckOptions {
  quick: boolean;
  /** Sequential latency: measured requests per model and gantry, after `warmupRequests` unmeasured ones. */
  requestCount: number;
  warmupRequests: number;
  /** Throughput: seconds of autocannon per model and gantry, at `connections`. */
  throughputSeconds: number;
  connections: number;
  /** Where the report is written too (it always goes to stdout). */
  outFile: string | undefined;
  /** Where each gantry's output is saved at the end. */
  logDirectory: string | undefined;
  /** gpu-check's own deadline: it reports and exits when it passes. */
  deadlineSeconds: number;
  deviceUnderTest: Device;
  /** Row labels: `cuda` vs `cpu`; in the CPU-only rehearsal `cpu-dut` vs `cpu`, so the two stay distinguishable. */
  dutLabel: string;
  refLabel: string;
  redisUrl: string;
}

/** Throws on an option without a value or an unknown device, before anything has started. */
export function parseGpuCheckOptions(argv: readonly string[], environment: NodeJS.ProcessEnv): GpuCheckOptions {
  const option = (name: string): string | undefined => {
    const index = argv.indexOf(name);
    if (index === -1) return undefined;
    const value = argv[index + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
    return value;
  };
  const quick = argv.includes('--quick');
  const requestCount = Number(option('--requests') ?? (quick ? 40 : 200));
  const throughputSeconds = Number(option('--seconds') ?? (quick ? 2 : 5));
  const connections = Number(option('--connections') ?? 32);
  const outFile = option('--out');
  const logDirectory = option('--log-dir');
  const deadlineSeconds = Number(option('--deadline-seconds') ?? 300);
  const deviceUnderTest = (option('--device-under-test') ?? environment.GANTRY_GPU_CHECK_DEVICE ?? 'cuda') as Device;
  if (deviceUnderTest !== 'cuda' && deviceUnderTest !== 'cpu') throw new Error(`--device-under-test must be cuda or cpu, not ${String(deviceUnderTest)}`);
  return {
    quick,
    requestCount,
    warmupRequests: quick ? 5 : 20,
    throughputSeconds,
    connections,
    outFile,
    logDirectory,
    deadlineSeconds,
    deviceUnderTest,
    dutLabel: deviceUnderTest === 'cuda' ? 'cuda' : 'cpu-dut',
    refLabel: 'cpu',
    redisUrl: environment.REDIS_URL !== undefined && environment.REDIS_URL !== '' ? environment.REDIS_URL : 'redis://127.0.0.1:6379',
  };
}
