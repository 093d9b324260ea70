/**
 * Issue 16, the webhook building blocks (src/webhooks/), against a real HTTP receiver on this machine: signatures a
 * receiver verifies (and refuses when tampered with, stale or under another secret), the SSRF guard (loopback,
 * private, link-local, metadata and mapped addresses refused, the allow-list honoured, every resolved address
 * checked), and deliveries: retried with backoff until the receiver answers 2xx (fails twice, then succeeds: three
 * attempts), redirects not followed, a slow receiver cut at the timeout, a huge answer not read, and the connection
 * made to the checked address whatever the name resolves to later.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GantryError } from '../../src/errors.js';
import { deliverOnce, deliverWithRetries, retryDelayMs, type DeliveryOptions } from '../../src/webhooks/webhook-delivery.js';
import { signWebhook, signatureHeader, verifyWebhookSignature } from '../../src/webhooks/webhook-signature.js';
import { parseWebhookAllowList, resolveWebhookTarget } from '../../src/webhooks/webhook-target.js';

const noAllowList = parseWebhookAllowList(undefined);
const loopbackAllowed = parseWebhookAllowList('127.0.0.0/8');
const options: DeliveryOptions = { timeoutMs: 1000, maxResponseBytes: 4096, attempts: 3, baseDelayMs: 20, maxDelayMs: 100 };

describe('webhook signatures', () => {
  test('a receiver verifies the signature; a changed body, another secret or a stale timestamp is refused', () => {
    const body = JSON.stringify({ id: 'job-1', state: 'succeeded' });
    const now = 1_800_000_000;
    const header = signWebhook('s3cret', now, body);
    assert.match(header, /^t=1800000000,v1=[0-9a-f]{64}$/);
    assert.equal(verifyWebhookSignature(header, 's3cret', body, now), true);
    assert.equal(verifyWebhookSignature(header, 's3cret', body.replace('succeeded', 'failed'), now), false);
    assert.equal(verifyWebhookSignature(header, 'other', body, now), false);
    assert.equal(verifyWebhookSignature(header, 's3cret', body, now + 301), false, 'older than the tolerance');
    assert.equal(verifyWebhookSignature('t=x,v1=zz', 's3cret', body, now), false);
  });
});

describe('the SSRF guard', () => {
  const refusedTargets = [
    'http://127.0.0.1:6379/',
    'http://localhost/',
    'http://10.1.2.3/',
    'http://172.16.0.1/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://0.0.0.0/',
    'http://[::1]/',
    'http://[fe80::1]/',
    'http://[fd00:ec2::254]/',
    'http://[::ffff:127.0.0.1]/',
    'http://224.0.0.1/',
  ];
  for (const url of refusedTargets) {
    test(`refuses ${url}`, async () => {
      await assert.rejects(resolveWebhookTarget(url, noAllowList), (error: unknown) => {
        assert.ok(error instanceof GantryError);
        assert.match(error.message, /not a public address.*GANTRY_WEBHOOK_ALLOW/);
        return true;
      });
    });
  }

  test('refuses other schemes, credentials in the URL, names that do not resolve, and names with any private address', async () => {
    await assert.rejects(resolveWebhookTarget('file:///etc/passwd', noAllowList), /must be http or https/);
    await assert.rejects(resolveWebhookTarget('https://user:pw@example.com/', noAllowList), /must not carry credentials/);
    await assert.rejects(resolveWebhookTarget('not a url', noAllowList), /not a URL/);
    await assert.rejects(
      resolveWebhookTarget('https://nowhere.invalid/', noAllowList, () => Promise.reject(new Error('ENOTFOUND'))),
      /does not resolve/,
    );
    const mixed = () =>
      Promise.resolve([
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.5', family: 4 },
      ]);
    await assert.rejects(resolveWebhookTarget('https://rebinder.example/', noAllowList, mixed), /resolves to 10\.0\.0\.5/);
  });

  test('accepts a public address, and what GANTRY_WEBHOOK_ALLOW lists (a range, an address, a host name)', async () => {
    const publicTarget = await resolveWebhookTarget('https://93.184.216.34/hook', noAllowList);
    assert.deepEqual([publicTarget.address, publicTarget.family], ['93.184.216.34', 4]);
    const allow = parseWebhookAllowList('10.0.0.0/8, fd00::1, receiver.internal');
    assert.equal((await resolveWebhookTarget('http://10.9.9.9/', allow)).address, '10.9.9.9');
    assert.equal((await resolveWebhookTarget('http://[fd00::1]/', allow)).family, 6);
    const internal = await resolveWebhookTarget('http://receiver.internal/', allow, () => Promise.resolve([{ address: '192.168.7.7', family: 4 }]));
    assert.equal(internal.address, '192.168.7.7');
    assert.throws(() => parseWebhookAllowList('10.0.0.0/99'), /not a CIDR range/);
  });
});

describe('webhook deliveries (a real receiver on loopback, allowed)', () => {
  let server: Server;
  let base: string;
  let behaviour: (
    request: IncomingMessage,
    body: string,
  ) => { status: number; headers?: Record<string, string>; body?: string; delayMs?: number; bytes?: number };
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];

  before(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ headers: request.headers, body });
        const answer = behaviour(request, body);
        setTimeout(() => {
          response.writeHead(answer.status, answer.headers);
          if (answer.bytes !== undefined) {
            // A receiver that answers without end: the delivery must not read it all.
            const chunk = Buffer.alloc(64 * 1024, 120);
            let sent = 0;
            const push = () => {
              while (sent < answer.bytes! && response.write(chunk)) sent += chunk.length;
              if (sent < answer.bytes!) response.once('drain', push);
              else response.end();
            };
            push();
            return;
          }
          response.end(answer.body ?? '');
        }, answer.delayMs ?? 0);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('a receiver that fails twice and then succeeds gets three attempts, each signed, with growing waits', async () => {
    received.length = 0;
    let calls = 0;
    behaviour = () => ({ status: ++calls <= 2 ? 500 : 204 });
    const target = await resolveWebhookTarget(`${base}/hook`, loopbackAllowed);
    const body = JSON.stringify({ id: 'job-7', state: 'succeeded' });
    const seen: number[] = [];
    const attempts = await deliverWithRetries(target, body, 'hook-secret', options, (attempt) => void seen.push(attempt.status ?? 0));
    assert.deepEqual(
      attempts.map((attempt) => [attempt.status, attempt.error]),
      [
        [500, 'the receiver answered 500'],
        [500, 'the receiver answered 500'],
        [204, undefined],
      ],
    );
    assert.deepEqual(seen, [500, 500, 204], 'each attempt is reported as it ends');
    for (const delivery of received) {
      assert.equal(delivery.body, body);
      const header = String(delivery.headers[signatureHeader]);
      assert.equal(verifyWebhookSignature(header, 'hook-secret', delivery.body, Math.floor(Date.now() / 1000)), true, 'the receiver verifies the signature');
    }
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((attempt) => retryDelayMs(attempt, options)),
      [0, 20, 40, 80, 100],
    );
  });

  test('a redirect is not followed, a slow receiver is cut at the timeout, and a huge answer is not read', async () => {
    const target = await resolveWebhookTarget(`${base}/hook`, loopbackAllowed);
    behaviour = () => ({ status: 302, headers: { location: 'http://169.254.169.254/' } });
    const redirected = await deliverOnce(target, '{}', undefined, options);
    assert.deepEqual([redirected.status, redirected.error], [302, 'the receiver answered 302']);

    behaviour = () => ({ status: 200, delayMs: 3000 });
    const started = Date.now();
    const slow = await deliverOnce(target, '{}', undefined, { ...options, timeoutMs: 300 });
    assert.ok(slow.error !== undefined && slow.status === undefined, JSON.stringify(slow));
    assert.ok(Date.now() - started < 2000, 'cut at the timeout');

    behaviour = () => ({ status: 200, bytes: 512 * 1024 ** 2 });
    const huge = Date.now();
    const answered = await deliverOnce(target, '{}', undefined, options);
    assert.equal(answered.status, 200, JSON.stringify(answered));
    assert.ok(Date.now() - huge < 2000, 'the answer is not read to its end');
  });

  test('the delivery connects to the checked address, not to what the name resolves to later', async () => {
    behaviour = () => ({ status: 200 });
    received.length = 0;
    const port = (server.address() as AddressInfo).port;
    // The name would resolve anywhere later; the check saw 127.0.0.1 (allowed), and the connection goes there.
    const target = await resolveWebhookTarget(`http://receiver.invalid:${port}/pinned`, parseWebhookAllowList('receiver.invalid'), () =>
      Promise.resolve([{ address: '127.0.0.1', family: 4 }]),
    );
    const attempt = await deliverOnce(target, '{"pinned":true}', undefined, options);
    assert.equal(attempt.status, 200, JSON.stringify(attempt));
    assert.equal(received[0]?.headers.host, `receiver.invalid:${port}`);
  });
});
