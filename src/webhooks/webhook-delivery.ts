import { Agent, request } from 'undici';
import { signWebhook, signatureHeader } from './webhook-signature.js';
import type { WebhookTarget } from './webhook-target.js';

/** One delivery attempt, as a job shows it (`deliveries: [{at, status, error}]`). */
export interface DeliveryAttempt {
  /** When the attempt started (ISO 8601). */
  at: string;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** Why the attempt failed (no answer, a timeout, a status that is not 2xx). */
  error?: string;
}

export interface DeliveryOptions {
  /** The whole attempt (connect, send, answer) must end within this. */
  timeoutMs: number;
  /** The receiver's answer is read at most this far (its body is not used; reading a little lets the connection close cleanly). */
  maxResponseBytes: number;
  /** Attempts in all (the first one included). */
  attempts: number;
  /** Wait before the second attempt; each later wait doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** The wait before attempt `attempt` (1-based; the first attempt has none): exponential, capped. */
export function retryDelayMs(attempt: number, options: Pick<DeliveryOptions, 'baseDelayMs' | 'maxDelayMs'>): number {
  if (attempt <= 1) return 0;
  return Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 2));
}

/**
 * POSTs `body` (JSON) to a checked target once: connected to the address resolveWebhookTarget checked (never a
 * second DNS lookup), redirects not followed (a 3xx is a failed attempt), the answer read at most
 * `maxResponseBytes`, signed with `secret` when there is one. Never throws: the outcome is the attempt.
 */
export async function deliverOnce(target: WebhookTarget, body: string, secret: string | undefined, options: DeliveryOptions): Promise<DeliveryAttempt> {
  const at = new Date().toISOString();
  const dispatcher = new Agent({
    connect: {
      // The checked address, whatever the name resolves to now; TLS still verifies the certificate for the name.
      lookup: (_hostname, _options, callback) => callback(null, [{ address: target.address, family: target.family }]),
      timeout: options.timeoutMs,
    },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    const reply = await request(target.url, {
      method: 'POST',
      dispatcher,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'gantry-webhooks',
        ...(secret === undefined ? {} : { [signatureHeader]: signWebhook(secret, timestamp, body) }),
      },
      body,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    let read = 0;
    for await (const chunk of reply.body) {
      read += (chunk as Buffer).byteLength;
      if (read >= options.maxResponseBytes) break;
    }
    reply.body.destroy();
    if (reply.statusCode >= 200 && reply.statusCode < 300) return { at, status: reply.statusCode };
    return { at, status: reply.statusCode, error: `the receiver answered ${reply.statusCode}` };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code;
    return { at, error: `no answer: ${(error as Error).name}${cause === undefined ? '' : ` (${cause})`}` };
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

/**
 * Delivers with retries: until an attempt succeeds or `attempts` are spent, waiting retryDelayMs between them.
 * `onAttempt` is told each attempt as it ends (a job records them). @returns every attempt made.
 */
export async function deliverWithRetries(
  target: WebhookTarget,
  body: string,
  secret: string | undefined,
  options: DeliveryOptions,
  onAttempt: (attempt: DeliveryAttempt) => void | Promise<void> = () => undefined,
): Promise<DeliveryAttempt[]> {
  const made: DeliveryAttempt[] = [];
  for (let attempt = 1; attempt <= options.attempts; attempt++) {
    const delay = retryDelayMs(attempt, options);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const outcome = await deliverOnce(target, body, secret, options);
    made.push(outcome);
    await onAttempt(outcome);
    if (outcome.error === undefined) break;
  }
  return made;
}
