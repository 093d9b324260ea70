/**
 * Queue and key names. Every name carries a Redis Cluster hash tag from the start, so a model's queue and its
 * keys live on one shard and different models spread over shards. Model names are validated before they get
 * here (letters, digits, '_', '.', '-'), so they cannot break out of the braces.
 */
export const modelNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function isValidModelName(name: string): boolean {
  return modelNamePattern.test(name);
}

/** The BullMQ queue that carries inference jobs for one model (all its versions). */
export function inferenceQueueName(model: string): string {
  return `infer{${model}}`;
}

/**
 * The stream on which producers announce "model X has work": workers consume only the model queues announced
 * lately, so their Redis connections do not grow with the number of models (queue/work-doorbell.ts).
 */
export function workDoorbellKey(prefix: string): string {
  return `${prefix}:work-doorbell{gantry}`;
}

/** The queue that carries model load requests; any worker may take them. */
export const controlQueueName = 'control{gantry}';

/** A Redis key holding one large job's tensor bytes, next to the job in the same hash slot. */
export function payloadKey(prefix: string, model: string, jobId: string): string {
  return `${prefix}:payload{${model}}:${jobId}`;
}

/** A Redis key holding a large reply's output bytes; the published reply then carries only the header. */
export function replyBodyKey(prefix: string, model: string, id: string): string {
  return `${prefix}:reply-body{${model}}:${id}`;
}

/** The pub/sub channel on which one API process receives replies for the jobs it queued. */
export function replyChannel(prefix: string, processId: string): string {
  return `${prefix}:reply:${processId}`;
}

/** Registry changes (version added, ready, deleted) are announced here so caches and workers follow. */
export function registryEventsChannel(prefix: string): string {
  return `${prefix}:registry-events`;
}
