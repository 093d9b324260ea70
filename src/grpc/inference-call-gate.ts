import type { Principal } from '../auth/principal.js';
import { errors, type ErrorCode } from '../errors.js';
import type { RequestAdmission } from '../limits/request-admission.js';
import { usageOutcomeOf, type UsageRecorder } from '../usage/usage-recorder.js';
import { publicGrpcPrincipal } from './call-principal.js';
import type { GrpcCallContext } from './grpc-call-context.js';
import { requestMessageBytes, type WireInferRequest } from './infer-request.js';
import { inflightBudgetExceeded, type InflightBytes } from '../limits/inflight-bytes.js';
import type { InferenceCallGate } from './grpc-server.js';

/** The gRPC methods that are inferences (each message of a stream one): metered, and held to the tenant's share and quotas (REST's POST …/infer). */
const meteredMethods: ReadonlySet<string> = new Set(['/inference.GRPCInferenceService/ModelInfer', '/inference.GRPCInferenceService/ModelStreamInfer']);

/**
 * Limits and metering of gRPC calls through the same objects REST's plugins use (src/limits/request-admission.ts,
 * src/usage/usage-recorder.ts): a gRPC call counts against the same rates, quotas and per-tenant share, and its
 * usage lands in the same report, so gRPC is no way around them.
 */
/** The API process's one budget of request bytes held at once (shared with REST bodies), and where its refusals are counted. */
export interface InflightBudget {
  bytes: InflightBytes;
  onRefusal: () => void;
}

export function inferenceCallGate(admission: RequestAdmission, recorder: UsageRecorder, inflight: InflightBudget): InferenceCallGate {
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
    async admit(principal: Principal, metered: boolean, context: GrpcCallContext, request: unknown) {
      // grpc-js has decoded the message already, and it stays held until the answer is written: like a REST body
      // it counts against the in-flight budget, first and for every caller (the admin too), so a crowd of large
      // calls cannot grow the heap past GANTRY_MAX_INFLIGHT_BYTES, also while they wait for the tenant's share.
      const reservation = inflight.bytes.open();
      if (metered && !reservation.grow(requestMessageBytes(request as WireInferRequest))) {
        inflight.onRefusal();
        throw inflightBudgetExceeded(inflight.bytes);
      }
      if (principal === publicGrpcPrincipal || admission.isExempt(principal)) return () => reservation.release();
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
        reservation.release();
        throw error;
      }
      return () => {
        slot?.release();
        reservation.release();
      };
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
