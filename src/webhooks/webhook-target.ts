import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { errors } from '../errors.js';

/**
 * Where a webhook may be sent (issue 16's SSRF guard). A callback URL is input from a tenant: without a guard it
 * reaches what only Gantry can reach (Redis, a cloud metadata service, the admin side of other services). Only
 * http(s) on public unicast addresses are allowed, checked on the addresses the name resolves to now, and the
 * delivery connects to the address checked (no second lookup a rebinding DNS could answer differently).
 * GANTRY_WEBHOOK_ALLOW lists exceptions: host names, addresses or CIDR ranges (e.g. a receiver on the private network).
 */

/** ipaddr.js range names that are public unicast; every other range (private, loopback, link-local, …) is refused. */
const publicRanges: ReadonlySet<string> = new Set(['unicast']);

export interface WebhookAllowList {
  hosts: ReadonlySet<string>;
  ranges: ReadonlyArray<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
}

/** Reads GANTRY_WEBHOOK_ALLOW (comma-separated host names, addresses or CIDR ranges). @throws naming a bad entry. */
export function parseWebhookAllowList(text: string | undefined): WebhookAllowList {
  const hosts = new Set<string>();
  const ranges: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> = [];
  for (const entry of (text ?? '').split(',').map((part) => part.trim().toLowerCase())) {
    if (entry === '') continue;
    if (entry.includes('/')) {
      try {
        ranges.push(ipaddr.parseCIDR(entry));
      } catch {
        throw new Error(`GANTRY_WEBHOOK_ALLOW: '${entry.slice(0, 60)}' is not a CIDR range (like 10.0.0.0/8 or fd00::/8)`);
      }
    } else if (isIP(entry) !== 0) ranges.push([ipaddr.parse(entry), isIP(entry) === 4 ? 32 : 128]);
    else hosts.add(entry);
  }
  return { hosts, ranges };
}

/** A checked destination: the URL, and the address the delivery must connect to. */
export interface WebhookTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** The address as ipaddr.js reads it, an IPv4-mapped IPv6 address as the IPv4 address it carries. */
function parsed(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const value = ipaddr.parse(address);
  return value.kind() === 'ipv6' && (value as ipaddr.IPv6).isIPv4MappedAddress() ? (value as ipaddr.IPv6).toIPv4Address() : value;
}

function isAllowedAddress(address: string, allow: WebhookAllowList): boolean {
  const value = parsed(address);
  if (allow.ranges.some(([range, bits]) => range.kind() === value.kind() && value.match(range, bits))) return true;
  return publicRanges.has(value.range());
}

/**
 * Checks a callback URL and resolves the address to deliver to.
 * @throws GantryError(INVALID_ARGUMENT) naming what is wrong: not http(s), credentials in the URL, a name that does
 *   not resolve, or an address that is not public (unless GANTRY_WEBHOOK_ALLOW lists it).
 */
export async function resolveWebhookTarget(
  urlText: string,
  allow: WebhookAllowList,
  resolve: (host: string) => Promise<Array<{ address: string; family: number }>> = (host) => lookup(host, { all: true }),
): Promise<WebhookTarget> {
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    throw errors.invalidArgument('The callback url is not a URL: give an absolute http(s) URL.');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw errors.invalidArgument(`The callback url must be http or https, not '${url.protocol.slice(0, 20)}'.`);
  if (url.username !== '' || url.password !== '')
    throw errors.invalidArgument('The callback url must not carry credentials; sign with the callback secret instead.');
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const hostAllowed = allow.hosts.has(host);
  let addresses: Array<{ address: string; family: number }>;
  if (isIP(host) !== 0) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await resolve(host);
    } catch {
      throw errors.invalidArgument(`The callback host '${host.slice(0, 100)}' does not resolve.`);
    }
  }
  // Every address the name has must be allowed: a name with one public and one private address would otherwise
  // reach the private one on a later delivery.
  const refused = addresses.find(({ address }) => !hostAllowed && !isAllowedAddress(address, allow));
  if (refused !== undefined || addresses.length === 0) {
    throw errors.invalidArgument(
      `The callback host '${host.slice(0, 100)}' resolves to ${refused?.address ?? 'nothing'}, which is not a public address (loopback, private, link-local and metadata addresses are refused); an operator can allow it with GANTRY_WEBHOOK_ALLOW.`,
    );
  }
  const chosen = addresses[0]!;
  return { url, address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
}
