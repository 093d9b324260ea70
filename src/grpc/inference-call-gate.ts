import type { Principal } from '../auth/principal.js';
import { errors, type ErrorCode } from '../errors.js';
import type { RequestAdmission } from '../limits/request-admission.js';
import { usageOutcomeOf, type UsageRecorder } from '../usage/usage-recorder.js';
import { publicGrpcPrincipal } from './call-principal.js';
import type { GrpcCallContext } from './grpc-call-context.js';
import type { InferenceCallGate } from './grpc-server.js';

/** The gRPC methods that are inferences (each message of a stream one): metered, and held to the tenant's share and quotas (REST's POST …/infer). */
const meteredMethods: ReadonlySet<string> = new Set(['/inference.GRPCInferenceService/ModelInfer', '/inference.GRPCInferenceService/ModelStreamInfer']);

/**
 * Limits and metering of gRPC calls through the same objects REST's plugins use (src/limits/request-admission.ts,
 * src/usage/usage-recorder.ts): a gRPC call counts against the same rates, quotas and per-tenant share, and its
 * usage lands in the same report, so gRPC is no way around them.
 */
export function inferenceCallGate(admission: RequestAdmission, recorder: UsageRecorder): InferenceCallGate {
  const meter = (context: GrpcCallContext, outcome: ReturnType<typeof usageOutcomeOf>) => {
    const usage = context.usage ?? {};
    recorder.record({
      principal: context.principal,
      model: usage.model,
      version: usage.version,
      rows: usage.rows,
      computeNs: usage.computeNs,
      outcome,
      bytesIn: context.bytesIn ?? 0,
      bytesOut: context.bytesOut ?? 0,
    });
  };
  return {
    isMetered: (methodPath) => meteredMethods.has(methodPath),
    async admit(principal: Principal, metered: boolean, context: GrpcCallContext) {
      if (principal === publicGrpcPrincipal || admission.isExempt(principal)) return () => undefined;
      const slot = metered ? admission.shareSlot(principal) : undefined;
      try {
        if (slot !== undefined && slot.ready !== true) {
          await untilReadyOrCancelled(slot.ready, context.signal);
        }
        const decision = await admission.check(principal, metered);
        if (decision.refusal !== undefined) {
          if (metered) meter(context, decision.refusal.usage);
          throw decision.refusal.error;
        }
      } catch (error) {
        slot?.release();
        throw error;
      }
      return slot === undefined ? () => undefined : slot.release;
    },
    meter: (context: GrpcCallContext, outcome: ErrorCode | 'cancelled' | undefined) =>
      meter(context, outcome === 'cancelled' ? 'client_error' : usageOutcomeOf(outcome)),
  };
}

/** Waits for the tenant's turn; a call cancelled meanwhile stops waiting (its slot is released by the caller). */
function untilReadyOrCancelled(ready: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(errors.cancelled());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(errors.cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    ready.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}
