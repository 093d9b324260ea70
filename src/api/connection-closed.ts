import type { ServerResponse } from 'node:http';
import type { CallerGone } from '../queue/caller-gone.js';

/**
 * The REST caller has gone when its response closed before it was written in full (the client closed the
 * connection, or it was reset). Reads the response's own state and `close` event: nothing is allocated per request
 * beyond this object and, once the request is queued, one listener.
 */
export class ConnectionClosed implements CallerGone {
  constructor(private readonly response: ServerResponse) {}

  get aborted(): boolean {
    if (this.response.writableFinished) return false;
    return this.response.destroyed || this.response.socket?.destroyed === true;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    this.response.once('close', () => {
      if (!this.response.writableFinished) listener();
    });
  }
}
