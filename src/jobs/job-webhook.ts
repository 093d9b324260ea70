import { renderResult } from '../inference/result-rendering.js';
import { encodeInferResponseParts } from '../protocol/binary-extension.js';
import type { WebhookCall } from '../webhooks/webhook-source.js';
import { jobView } from './job-record.js';
import type { JobStore } from './job-store.js';
import { decodeStoredAnswer } from './stored-answer.js';

/**
 * What a finished job's webhook carries: `{type: 'job.finished', job}` with the job as GET /v1/jobs/{id} shows
 * it (its deliveries so far included), and with `includeResult` the OIP JSON response as infer would answer it
 * (every output as JSON data) when that fits in `maxResultBytes`; otherwise `resultOmitted` says why and the
 * receiver fetches GET /v1/jobs/{id}/result. Undefined when the job has no callback or is gone.
 */
export async function describeJobWebhook(store: JobStore, id: string, maxResultBytes: number): Promise<WebhookCall | undefined> {
  const record = await store.get(id);
  if (record?.callback === undefined) return undefined;
  const body: Record<string, unknown> = { type: 'job.finished', job: jobView(record, await store.deliveries(id)) };
  if (record.callback.includeResult === true && record.state === 'succeeded') {
    const stored = await store.result(id);
    const answer = stored === undefined ? undefined : decodeStoredAnswer(stored);
    if (answer?.ok === true) {
      const result = renderResult({ ...record.rendering, binary: [] }, answer.outputs);
      const encoded = encodeInferResponseParts(
        { model_name: result.modelName, model_version: result.modelVersion, ...(result.id === undefined ? {} : { id: result.id }) },
        result.outputs,
      );
      const text = encoded.serialized ?? JSON.stringify(encoded.json);
      if (Buffer.byteLength(text) <= maxResultBytes) body.result = encoded.serialized === undefined ? encoded.json : JSON.parse(text);
      else body.resultOmitted = `the result is larger than GANTRY_WEBHOOK_MAX_RESULT_BYTES (${maxResultBytes} bytes); GET /v1/jobs/${id}/result`;
    }
  }
  const finishedAt = record.finishedAt ?? Date.now();
  return {
    url: record.callback.url,
    ...(record.callback.secret === undefined ? {} : { secret: record.callback.secret }),
    body,
    retentionMs: Math.max(1000, finishedAt + record.retentionMs - Date.now()),
  };
}
