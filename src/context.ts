import { isbot } from "isbot";
import UAParser from "ua-parser-js";
import type { EventContext } from "./protocol/events";

/**
 * The context every analytics ingest adds, as Segment and PostHog do: computed once per request
 * (or per socket, from its upgrade) in the Worker and stamped by the replica on each event the
 * request carries. The client's own `data.*` is never touched: these are columns of their own.
 */

/** What the `IP_POLICY` var allows to be stored of the client's IP. */
export const IP_POLICIES = ["drop", "truncate", "keep"] as const;
export type IpPolicy = (typeof IP_POLICIES)[number];

/** The policy a var names; anything else (a typo included) is the private default, with a warning. */
export function ipPolicy(raw: string | undefined): IpPolicy {
  if (raw === undefined || raw === "") return "truncate";
  if ((IP_POLICIES as readonly string[]).includes(raw)) return raw as IpPolicy;
  warnOnce(`IP_POLICY "${raw}" is not one of ${IP_POLICIES.join(", ")}: truncating IPs`);
  return "truncate";
}

let warned = false;
function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  console.warn(`ducktail: ${message}`);
}

/** An IPv4 address to its /24 (`a.b.c.0`), an IPv6 one to its /48 (`a:b:c::`); null if it is neither. */
export function truncateIp(ip: string): string | null {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0`;
  const groups = ipv6Groups(ip);
  return groups
    ? `${groups
        .slice(0, 3)
        .map((g) => Number.parseInt(g, 16).toString(16))
        .join(":")}::`
    : null;
}

/** The eight groups of an IPv6 address, `::` expanded (an IPv4 tail counts as two); null if it is not one. */
function ipv6Groups(ip: string): string[] | null {
  const halves = ip.replace(/\d+\.\d+\.\d+\.\d+$/, "0:0").split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves[1] ? halves[1].split(":") : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0) return null;
  const groups = [...head, ...Array<string>(fill).fill("0"), ...tail];
  return groups.length === 8 && groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g)) ? groups : null;
}

function applyPolicy(ip: string | null, policy: IpPolicy): string | null {
  if (ip === null || policy === "drop") return null;
  return policy === "keep" ? ip : truncateIp(ip);
}

type Agent = Pick<EventContext, "browser" | "browserVersion" | "os" | "osVersion" | "deviceType" | "bot">;

const NO_AGENT: Agent = { browser: null, browserVersion: null, os: null, osVersion: null, deviceType: null, bot: null };
/** Parsed User-Agents, per isolate: the same few strings come again and again. */
const agents = new Map<string, Agent>();
const MAX_AGENTS = 1000;

/** A User-Agent string parsed by ua-parser-js, with isbot's verdict. */
export function parseAgent(ua: string | null): Agent {
  if (!ua) return NO_AGENT;
  const hit = agents.get(ua);
  if (hit) return hit;
  const parsed = new UAParser(ua).getResult();
  const browser = parsed.browser.name ?? null;
  const agent: Agent = {
    browser,
    browserVersion: parsed.browser.version ?? null,
    os: parsed.os.name ?? null,
    osVersion: parsed.os.version ?? null,
    // ua-parser names a device type only off the desktop.
    deviceType: parsed.device.type ?? (browser !== null && parsed.os.name !== undefined ? "desktop" : null),
    bot: isbot(ua),
  };
  if (agents.size >= MAX_AGENTS) agents.clear();
  agents.set(ua, agent);
  return agent;
}

/** Cloudflare's view of a request: geography from `request.cf`, the client IP from its header. */
interface RequestView {
  headers: Headers;
  cf?: object | undefined;
}

function text(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

/** The context of a request under `policy`. */
export function requestContext(req: RequestView, policy: IpPolicy): EventContext {
  const cf = req.cf as { country?: unknown; region?: unknown; city?: unknown; timezone?: unknown } | undefined;
  return {
    country: text(cf?.country),
    region: text(cf?.region),
    city: text(cf?.city),
    timezone: text(cf?.timezone),
    ...parseAgent(req.headers.get("user-agent")),
    ip: applyPolicy(text(req.headers.get("cf-connecting-ip")), policy),
  };
}

/**
 * A context as an internal header value: JSON with every non-ASCII character escaped (city names
 * are not Latin-1, and header values must be), so it is still the JSON text of the same object.
 */
export function contextHeader(context: EventContext): string {
  return JSON.stringify(context).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
