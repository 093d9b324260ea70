/** What a lane needs to know of a waiting request. */
export interface LaneRequest {
  /** Its input bytes, for packing jobs under the payload cap. */
  readonly payloadBytes: number;
  /** True once answered, failed, timed out or cancelled: it leaves its lane without being sent. */
  readonly settled: boolean;
}

export interface CoalescingOptions {
  /** Most requests one job may carry. */
  maxRequestsPerJob: number;
  /** Jobs kept in flight per lane before requests start waiting to be packed together. */
  maxJobsInFlight: number;
  /** Most input bytes packed into one job (a lone larger request still goes). */
  maxPayloadBytesPerJob: number;
}

/**
 * Sends one job's requests; resolves once every request in it has settled (then the lane may send again).
 * `target` and `priority` are the lane's, as given to the latest `add`.
 */
export type SendJob<Target, Request> = (target: Target, priority: number, batch: Request[]) => Promise<void>;

interface Lane<Target, Request> {
  key: string;
  target: Target;
  priority: number;
  inFlight: number;
  waiting: Request[];
  /** How long a request of an idle lane may wait for others to leave with it (0: it leaves at once). */
  gatherMs: number;
  /** When the oldest request of the current gathering arrived (performance.now()), while one is under way. */
  gatheringSince: number | undefined;
  gatherTimer: NodeJS.Timeout | undefined;
}

/**
 * Packs requests for one model version and priority (a lane) into jobs. When nothing of a lane is in flight, a
 * request is sent at once, alone, so a lone request is never delayed. While one is out, requests wait and leave
 * together: in a second job once a quarter of a job's worth is waiting (at most `maxJobsInFlight` jobs out),
 * else in the next job when one comes back. So the Redis cost per request falls as load rises; the price is that
 * a request arriving while a slow job is out waits for it, even when another worker is idle.
 *
 * A lane given a gather time (work nobody waits on: shadow copies) does not send a lone request at once: what
 * arrives within that time leaves in one job, so a copy of every request costs the queue a job per gathering
 * instead of a job per copy.
 */
export class CoalescingLanes<Target, Request extends LaneRequest> {
  /** Bounded by what is waiting or in flight: a lane goes when empty. */
  private readonly lanes = new Map<string, Lane<Target, Request>>();

  constructor(
    private readonly options: CoalescingOptions,
    private readonly send: SendJob<Target, Request>,
  ) {}

  /**
   * Adds a request to the lane `laneKey` names (requests of different versions, priorities or settings must get
   * different keys: they never share a job) and sends what is ready.
   */
  add(laneKey: string, target: Target, priority: number, request: Request, gatherMs = 0): void {
    let lane = this.lanes.get(laneKey);
    if (lane === undefined) {
      lane = { key: laneKey, target, priority, inFlight: 0, waiting: [], gatherMs, gatheringSince: undefined, gatherTimer: undefined };
      this.lanes.set(laneKey, lane);
    }
    lane.target = target;
    lane.waiting.push(request);
    lane.gatheringSince ??= performance.now();
    this.pump(lane);
  }

  /** Lanes with requests waiting or jobs in flight (for the bounded-state checks). */
  get size(): number {
    return this.lanes.size;
  }

  /**
   * Sends waiting requests when it pays: at once when nothing of this lane is in flight, otherwise only once a
   * quarter of a job's worth is waiting, so busy lanes send few, full jobs instead of alternating full jobs with
   * lone requests.
   */
  private pump(lane: Lane<Target, Request>): void {
    const { maxRequestsPerJob, maxJobsInFlight, maxPayloadBytesPerJob } = this.options;
    const enough = Math.max(1, Math.ceil(maxRequestsPerJob / 4));
    // Requests that settled while waiting (timed out, client gone) leave at once: they hold nothing any more.
    lane.waiting = lane.waiting.filter((request) => !request.settled);
    if (this.stillGathering(lane)) return;
    while (
      lane.waiting.length > 0 &&
      (lane.inFlight === 0 || (lane.inFlight < maxJobsInFlight && (lane.waiting.length >= enough || waitingBytes(lane.waiting) >= maxPayloadBytesPerJob / 4)))
    ) {
      const batch = takeJob(lane.waiting, maxRequestsPerJob, maxPayloadBytesPerJob);
      lane.inFlight++;
      void this.send(lane.target, lane.priority, batch).finally(() => {
        lane.inFlight--;
        this.pump(lane);
      });
    }
    if (lane.waiting.length === 0) lane.gatheringSince = undefined;
    // An empty lane is forgotten, so a caller trying every priority leaves nothing behind.
    if (lane.waiting.length === 0 && lane.inFlight === 0 && this.lanes.get(lane.key) === lane) this.lanes.delete(lane.key);
  }

  /**
   * True while an idle lane with a gather time should wait for more requests: its oldest waiting request is younger
   * than the gather time and less than a job's worth is waiting. A timer pumps the lane when the time is up.
   */
  private stillGathering(lane: Lane<Target, Request>): boolean {
    if (lane.gatherMs === 0 || lane.inFlight > 0 || lane.waiting.length === 0) return false;
    const { maxRequestsPerJob, maxPayloadBytesPerJob } = this.options;
    if (lane.waiting.length >= maxRequestsPerJob || waitingBytes(lane.waiting) >= maxPayloadBytesPerJob / 4) return false;
    const waitedMs = performance.now() - (lane.gatheringSince ?? 0);
    if (waitedMs >= lane.gatherMs) return false;
    if (lane.gatherTimer === undefined) {
      lane.gatherTimer = setTimeout(() => {
        lane.gatherTimer = undefined;
        this.pump(lane);
      }, lane.gatherMs - waitedMs);
      // Nothing waits on gathered work: it must not keep a closing process alive (its requests have deadlines).
      lane.gatherTimer.unref();
    }
    return true;
  }
}

function waitingBytes(waiting: readonly LaneRequest[]): number {
  let bytes = 0;
  for (const request of waiting) bytes += request.payloadBytes;
  return bytes;
}

/**
 * Takes the next job's requests from the front of `waiting`: at most `maxRequests`, and only while their input
 * bytes stay within `maxPayloadBytes`, but always at least one, so a large request still goes (alone).
 */
function takeJob<Request extends LaneRequest>(waiting: Request[], maxRequests: number, maxPayloadBytes: number): Request[] {
  let count = 0;
  let bytes = 0;
  while (count < waiting.length && count < maxRequests) {
    const next = waiting[count]!.payloadBytes;
    if (count > 0 && bytes + next > maxPayloadBytes) break;
    bytes += next;
    count++;
  }
  return waiting.splice(0, count);
}
