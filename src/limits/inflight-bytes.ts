import { errors, type GantryError } from '../errors.js';

/**
 * The bytes of request bodies one API process holds at once (REST bodies and gRPC request messages alike) (GANTRY_MAX_INFLIGHT_BYTES): a body counts from its
 * first byte read until its response is sent, because the job's tensors are views into it until then. Past the
 * budget a request is refused at once with 503 + Retry-After, before its body is read, so a crowd of large or
 * slow bodies cannot grow the heap past what the operator sized the process for.
 */
export class InflightBytes {
  private used = 0;

  /** @param limitBytes the budget, in bytes. */
  constructor(readonly limitBytes: number) {}

  /** Bytes reserved now, over all open reservations. */
  get usedBytes(): number {
    return this.used;
  }

  /** A new, empty reservation for one request body. */
  open(): InflightReservation {
    return new InflightReservation(this);
  }

  /** @internal used by reservations only. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  /** @internal used by reservations only. */
  give(bytes: number): void {
    this.used -= bytes;
  }
}

/** One request body's share of the budget; grows as the body is read and is released exactly once. */
export class InflightReservation {
  private held = 0;
  private released = false;

  constructor(private readonly budget: InflightBytes) {}

  get heldBytes(): number {
    return this.held;
  }

  /**
   * Adds `bytes` to this reservation (the whole Content-Length up front, or each chunk as it arrives).
   * @returns false, reserving nothing, when the budget has no room (or the reservation was released).
   */
  grow(bytes: number): boolean {
    if (this.released || !this.budget.take(bytes)) return false;
    this.held += bytes;
    return true;
  }

  /** Gives everything back; later calls do nothing, so every path (answer, error, abort, timeout) may call it. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.give(this.held);
    this.held = 0;
  }
}

/** The refusal when a request does not fit the budget: 503 / UNAVAILABLE with Retry-After, naming the limit. */
export function inflightBudgetExceeded(budget: InflightBytes): GantryError {
  return errors.serverBusy(
    `request bodies of ${budget.usedBytes} bytes are in flight, at most ${budget.limitBytes} are held at once`,
    'GANTRY_MAX_INFLIGHT_BYTES',
  );
}
