import type { Redis } from 'ioredis';
import { refusedUploadKey } from '../redis-keys.js';

/**
 * Why a load refused an upload's bytes (its 422), kept a short while. An identical upload that arrived while that
 * version was loading waits for the load and, when the version is removed for failing it, answers the same 422
 * from here rather than naming a version that is gone (or loading the same bad bytes again).
 */
const keptMs = 5 * 60_000;

/** Longest reason kept: a load's reason is onnxruntime's message, short, but never unbounded in Redis. */
const maxReasonLength = 2000;

export async function recordUploadRefusal(redis: Redis, prefix: string, model: string, sha256: string, message: string): Promise<void> {
  await redis.set(refusedUploadKey(prefix, model, sha256), message.slice(0, maxReasonLength), 'PX', keptMs);
}

/** The message a load refused these bytes of `model` with lately, or undefined. */
export async function uploadRefusalOf(redis: Redis, prefix: string, model: string, sha256: string): Promise<string | undefined> {
  return (await redis.get(refusedUploadKey(prefix, model, sha256))) ?? undefined;
}
