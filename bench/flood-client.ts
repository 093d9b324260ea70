/**
 * `node dist/bench/flood-client.js` with FLOOD_OPTIONS (JSON: url, headers, body, connections, seconds) in the
 * environment: drives one URL with autocannon in a process of its own (so the caller's event loop, which times
 * other requests, is not the one sending the flood) and prints one JSON line: req/s of 2xx, non-2xx/s, errors.
 */
import autocannon from 'autocannon';

const options = JSON.parse(process.env.FLOOD_OPTIONS ?? '{}') as {
  url: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  seconds: number;
};
const result = await autocannon({
  url: options.url,
  method: 'POST',
  headers: options.headers,
  body: options.body,
  connections: options.connections,
  duration: options.seconds,
});
process.stdout.write(
  `${JSON.stringify({ okPerSecond: result['2xx'] / result.duration, non2xxPerSecond: result.non2xx / result.duration, errors: result.errors, timeouts: result.timeouts })}\n`,
);
