/** One request's place in its tenant's share: `ready` is true when it may go on at once, else when it may. */
export interface TenantSlot {
  ready: true | Promise<void>;
  /** Gives the slot back (or leaves the queue, for a request that was still waiting); once per slot. */
  release(): void;
}

interface Waiter {
  grant: () => void;
  granted: boolean;
  cancelled: boolean;
}

/**
 * Fair share of one API process between tenants (GANTRY_TENANT_MAX_INFLIGHT): each tenant has at most
 * `maxInflight` inference requests past this point at once; its further requests wait here, in arrival order and
 * before their bodies are read, while other tenants' requests go on. A flooding tenant's closed-loop clients are so
 * held to their share of the event loop, the queues and the workers instead of filling them ahead of everyone else.
 */
export class TenantConcurrency {
  private readonly inflight = new Map<string, number>();
  private readonly waiting = new Map<string, Waiter[]>();

  /** @param maxInflight requests of one tenant in flight at once; 0 turns the share off. */
  constructor(private readonly maxInflight: number) {}

  get enabled(): boolean {
    return this.maxInflight > 0;
  }

  /** Requests of `tenant` in flight now (for tests and metrics). */
  inflightOf(tenant: string): number {
    return this.inflight.get(tenant) ?? 0;
  }

  acquire(tenant: string): TenantSlot {
    const count = this.inflight.get(tenant) ?? 0;
    if (count < this.maxInflight) {
      this.inflight.set(tenant, count + 1);
      return this.slot(tenant, true);
    }
    const waiter: Waiter = { grant: () => undefined, granted: false, cancelled: false };
    const ready = new Promise<void>((resolve) => {
      waiter.grant = () => {
        waiter.granted = true;
        resolve();
      };
    });
    let queue = this.waiting.get(tenant);
    if (queue === undefined) this.waiting.set(tenant, (queue = []));
    queue.push(waiter);
    let released = false;
    return {
      ready,
      release: () => {
        if (released) return;
        released = true;
        // Still waiting (its client left): it never held a slot, so it only leaves the queue.
        if (!waiter.granted) waiter.cancelled = true;
        else this.releaseSlot(tenant);
      },
    };
  }

  private slot(tenant: string, ready: true): TenantSlot {
    let released = false;
    return {
      ready,
      release: () => {
        if (released) return;
        released = true;
        this.releaseSlot(tenant);
      },
    };
  }

  /** A slot goes to the tenant's next waiting request (the count stays), or back to the pool. */
  private releaseSlot(tenant: string): void {
    const queue = this.waiting.get(tenant);
    while (queue !== undefined && queue.length > 0) {
      const next = queue.shift()!;
      if (queue.length === 0) this.waiting.delete(tenant);
      if (next.cancelled) continue;
      next.grant();
      return;
    }
    const count = (this.inflight.get(tenant) ?? 1) - 1;
    if (count <= 0) this.inflight.delete(tenant);
    else this.inflight.set(tenant, count);
  }
}
