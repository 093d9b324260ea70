import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';

/**
 * Where Gantry's Redis is, read from REDIS_URL: one server (`redis://`, `rediss://` for TLS) or a master found
 * through Redis Sentinel (`redis+sentinel://`, `rediss+sentinel://`). Every connection Gantry opens (BullMQ, the
 * registry, pub/sub) is built from one of these by createRedis, so a failover or TLS applies to all of them.
 */
export type RedisEndpoint = DirectEndpoint | SentinelEndpoint;

interface EndpointCommon {
  /** TLS to the Redis servers (and, for Sentinel, to the sentinels too). */
  tls: boolean;
  username?: string;
  password?: string;
  db: number;
}

export interface DirectEndpoint extends EndpointCommon {
  kind: 'direct';
  host: string;
  port: number;
}

export interface SentinelAddress {
  host: string;
  port: number;
}

export interface SentinelEndpoint extends EndpointCommon {
  kind: 'sentinel';
  sentinels: SentinelAddress[];
  masterName: string;
}

/** What a URL cannot say: the sentinels' own password, and the CA that signed the servers' certificates. */
export interface RedisEndpointSettings {
  /** REDIS_SENTINEL_PASSWORD: sentinels protected by `requirepass` (their password, not the servers'). */
  sentinelPassword?: string;
  /** REDIS_TLS_CA_FILE: a PEM file of the CA that signed the servers' certificates (a private CA). */
  tlsCaFile?: string;
}

/** A REDIS_URL (or REDIS_SENTINELS) that cannot be used; its message names what is wrong, never the password. */
export class RedisEndpointError extends Error {}

const defaultRedisPort = 6379;
const defaultSentinelPort = 26379;
const schemes = {
  'redis:': { kind: 'direct', tls: false },
  'rediss:': { kind: 'direct', tls: true },
  'redis+sentinel:': { kind: 'sentinel', tls: false },
  'rediss+sentinel:': { kind: 'sentinel', tls: true },
} as const;
const forms =
  'redis://[user:password@]host[:port][/db], rediss://… (TLS), or redis+sentinel://[user:password@]host:port,host:port/mastername[?db=N] (rediss+sentinel:// for TLS)';

/**
 * Reads a REDIS_URL.
 * @throws RedisEndpointError naming the part that is wrong and the accepted forms (never echoing a password).
 */
export function parseRedisUrl(url: string): RedisEndpoint {
  const schemeEnd = url.indexOf('://');
  const scheme = schemeEnd < 0 ? '' : `${url.slice(0, schemeEnd).toLowerCase()}:`;
  if (!(scheme in schemes)) {
    throw new RedisEndpointError(schemeEnd < 0 ? `it is not a URL (no scheme): use ${forms}` : `unknown scheme '${scheme.slice(0, 30)}//': use ${forms}`);
  }
  const { kind, tls } = schemes[scheme as keyof typeof schemes];
  const rest = url.slice(schemeEnd + 3);
  const queryStart = rest.indexOf('?');
  const beforeQuery = queryStart < 0 ? rest : rest.slice(0, queryStart);
  const query = new URLSearchParams(queryStart < 0 ? '' : rest.slice(queryStart + 1));
  if (beforeQuery.includes('#')) throw new RedisEndpointError(`it has a '#' fragment, which means nothing here: use ${forms}`);
  const pathStart = beforeQuery.indexOf('/');
  const authority = pathStart < 0 ? beforeQuery : beforeQuery.slice(0, pathStart);
  const pathPart = pathStart < 0 ? '' : beforeQuery.slice(pathStart + 1);
  // The password may itself contain '@' when not percent-encoded: the host part starts after the last one.
  const at = authority.lastIndexOf('@');
  const credentials = at < 0 ? {} : readUserInfo(authority.slice(0, at));
  const hosts = authority.slice(at + 1);

  const unknown = [...query.keys()].filter((key) => key !== 'db');
  if (unknown.length > 0) {
    throw new RedisEndpointError(`unknown parameter '${unknown[0]!.slice(0, 40)}' (the only one read is ?db=N): use ${forms}`);
  }
  if (kind === 'direct') {
    const address = readAddress(hosts, defaultRedisPort, 'the host');
    if (pathPart !== '' && query.has('db')) throw new RedisEndpointError('it gives the database twice (a /db path and ?db=): keep one');
    const db = readDb(pathPart !== '' ? pathPart : (query.get('db') ?? ''));
    return { kind, tls, ...credentials, db, host: address.host, port: address.port };
  }
  if (hosts === '') throw new RedisEndpointError(`it names no sentinel: use ${forms}`);
  const sentinels = hosts.split(',').map((entry, index) => readAddress(entry, defaultSentinelPort, `sentinel ${index + 1}`));
  const masterName = decodePart(pathPart, 'the master name');
  if (masterName === '' || masterName.includes('/')) {
    throw new RedisEndpointError(
      `it needs the master's name as the path, as in the sentinels' \`sentinel monitor <name> …\` (e.g. redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster)`,
    );
  }
  return { kind, tls, ...credentials, db: readDb(query.get('db') ?? ''), sentinels, masterName };
}

/** A REDIS_URL's problem in words (undefined when it is usable), for configuration checks. */
export function redisUrlProblem(url: string): string | undefined {
  try {
    parseRedisUrl(url);
    return undefined;
  } catch (error) {
    if (error instanceof RedisEndpointError) return error.message;
    throw error;
  }
}

/**
 * The Sentinel URL that REDIS_SENTINELS (`host:port,host:port`) and REDIS_SENTINEL_NAME stand for, so that the
 * rest of Gantry (and the workers `gantry start` forks, which get REDIS_URL) knows one form only.
 * @throws RedisEndpointError when the list or the name cannot be read.
 */
export function sentinelUrlOf(sentinels: string, masterName: string, tls: boolean): string {
  const url = `${tls ? 'rediss' : 'redis'}+sentinel://${sentinels.replace(/\s+/g, '')}/${encodeURIComponent(masterName)}`;
  parseRedisUrl(url);
  return url;
}

/** Where Redis is, for messages and logs: hosts and ports and the master's name, never a password. */
export function describeRedisEndpoint(url: string): string {
  let endpoint: RedisEndpoint;
  try {
    endpoint = parseRedisUrl(url);
  } catch {
    return 'the configured Redis';
  }
  if (endpoint.kind === 'direct') return `${formatHost(endpoint.host)}:${endpoint.port}${endpoint.tls ? ' (TLS)' : ''}`;
  const sentinels = endpoint.sentinels.map((address) => `${formatHost(address.host)}:${address.port}`).join(',');
  return `master '${endpoint.masterName}' of the sentinels ${sentinels}${endpoint.tls ? ' (TLS)' : ''}`;
}

/**
 * The ioredis options that reach the endpoint: host and port, or the sentinels and master name (ioredis then
 * asks the sentinels for the current master at every connect, which is how a failover is followed); credentials;
 * the database; TLS with the CA file's certificates when one is given (else the system's CAs).
 */
export function redisEndpointOptions(endpoint: RedisEndpoint, settings: RedisEndpointSettings = {}): RedisOptions {
  const tls = endpoint.tls ? { tls: settings.tlsCaFile === undefined ? {} : { ca: readCaFile(settings.tlsCaFile) } } : {};
  const credentials = {
    ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
    ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
  };
  if (endpoint.kind === 'direct') return { host: endpoint.host, port: endpoint.port, db: endpoint.db, ...credentials, ...tls };
  return {
    sentinels: endpoint.sentinels.map((address) => ({ ...address })),
    name: endpoint.masterName,
    db: endpoint.db,
    ...credentials,
    ...(settings.sentinelPassword === undefined ? {} : { sentinelPassword: settings.sentinelPassword }),
    // TLS in Sentinel mode means both hops: to the sentinels (sentinelTLS) and to the master they name.
    ...(endpoint.tls ? { ...tls, enableTLSForSentinelMode: true, sentinelTLS: tls.tls } : {}),
    // Sentinels announce a promotion (+switch-master) at once. Without listening for it, a client finds the new
    // master only when the old one dies or is made a replica (~10 s later when it stays up: SENTINEL FAILOVER, a
    // partition), and its writes there until then are lost when it resyncs. Costs one idle subscription to each
    // sentinel per connection.
    failoverDetector: true,
  };
}

function readUserInfo(userInfo: string): { username?: string; password?: string } {
  const colon = userInfo.indexOf(':');
  const username = decodePart(colon < 0 ? userInfo : userInfo.slice(0, colon), 'the user name');
  const password = colon < 0 ? undefined : decodePart(userInfo.slice(colon + 1), 'the password');
  // redis://:password@host is the classic form: no user (Redis's `default`), only a password.
  return { ...(username === '' ? {} : { username }), ...(password === undefined || password === '' ? {} : { password }) };
}

function decodePart(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisEndpointError(`${what} has a malformed %-escape: percent-encode '%' as %25`);
  }
}

function readAddress(text: string, defaultPort: number, what: string): SentinelAddress {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]/?#@,]+)(?::(\d*))?$/.exec(text);
  if (match === null) {
    throw new RedisEndpointError(
      text === '' ? `${what} is missing: use ${forms}` : `${what} is not host[:port] (an IPv6 address goes in brackets): use ${forms}`,
    );
  }
  const host = match[1]!.replace(/^\[(.*)\]$/, '$1');
  const port = match[2] === undefined || match[2] === '' ? defaultPort : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RedisEndpointError(`${what} has port ${match[2]}, outside 1-65535`);
  return { host, port };
}

function readDb(text: string): number {
  if (text === '') return 0;
  if (!/^\d{1,5}$/.test(text)) throw new RedisEndpointError(`the database '${text.slice(0, 20)}' is not a number such as 0`);
  return Number(text);
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** CA files are read once per process: every connection (BullMQ opens more as models get work) shares them. */
const caFiles = new Map<string, Buffer>();

function readCaFile(file: string): Buffer {
  let contents = caFiles.get(file);
  if (contents === undefined) {
    try {
      contents = readFileSync(file);
    } catch (error) {
      throw new RedisEndpointError(
        `REDIS_TLS_CA_FILE=${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): set it to the PEM file of the CA that signed the Redis servers' certificates`,
      );
    }
    caFiles.set(file, contents);
  }
  return contents;
}
