import { deleteAll, listAll } from "../lake/bucket";
import { type ErasureSubject, isSubject } from "../protocol/lake";
import type { SessionSummary } from "../protocol/recording";
import type { RecordingNamespace } from "./client";
import { sessionRecording } from "./client";
import { daysBetween, indexDayPrefix, RECORDINGS_PREFIX, tenantRoot } from "./keys";
import { fromIndexBody, fromMetadata } from "./summary";

/** The tenant's sessions as their index objects list them: listing, erasure by user, retention. */

/** GET /recording/sessions's filters (parsed at the edge). */
export interface SessionQuery {
  /** Sessions that overlap [from, to] (epoch ms). */
  from: number;
  to: number;
  userId?: string;
  anonymousId?: string;
  /** true: only sessions with an error; false: only those without. */
  hasErrors?: boolean;
  limit: number;
}

interface Indexed {
  day: string;
  summary: SessionSummary;
}

const DAY_MS = 86_400_000;

/** The sessions indexed under `prefix`, from their metadata (or, when an id did not fit it, their index object). */
async function indexed(bucket: R2Bucket, prefix: string): Promise<Indexed[]> {
  const { objects } = await listAll(bucket, { prefix, include: ["customMetadata"] });
  const found: Indexed[] = [];
  for (const o of objects) {
    const m = /sessions\/dt=(\d{4}-\d{2}-\d{2})\/([^/]+)\.json$/.exec(o.key);
    if (!m) continue;
    let summary = fromMetadata(m[2] as string, o.customMetadata ?? {});
    if (summary === null) {
      const body = await bucket.get(o.key);
      if (body === null) continue; // erased meanwhile
      summary = fromIndexBody(await body.text());
    }
    found.push({ day: m[1] as string, summary });
  }
  return found;
}

/** The sessions overlapping the range that pass the filters, newest first. */
export async function listSessions(bucket: R2Bucket, tenant: string, q: SessionQuery): Promise<SessionSummary[]> {
  // A session is filed under the day it started: one that started the day before `from` may overlap it.
  const days = daysBetween(q.from - DAY_MS, q.to).reverse();
  const found: SessionSummary[] = [];
  for (const day of days) {
    for (const { summary: s } of await indexed(bucket, indexDayPrefix(tenant, day))) {
      if (s.end < q.from || s.start > q.to) continue;
      if (q.userId !== undefined && !userIdsOf(s).includes(q.userId)) continue;
      if (q.anonymousId !== undefined && !anonymousIdsOf(s).includes(q.anonymousId)) continue;
      if (q.hasErrors !== undefined && s.errors > 0 !== q.hasErrors) continue;
      found.push(s);
    }
  }
  return found.sort((a, b) => b.start - a.start).slice(0, q.limit);
}

/**
 * Erases every recorded session of the subject (through each session's object), matched as the
 * lake matches events: by userId, anonymousId or either, any of those the session's chunks carried
 * (not only the last). Answers how many.
 */
export async function eraseUserRecordings(
  bucket: R2Bucket,
  ns: RecordingNamespace,
  tenant: string,
  subject: ErasureSubject,
): Promise<number> {
  const mine = (await indexed(bucket, `${tenantRoot(tenant)}sessions/`)).filter((i) => isSessionOf(subject, i.summary));
  for (const { summary } of mine) await sessionRecording(ns, tenant, summary.session).erase();
  return mine.length;
}

/** Every userId the session's chunks carried, the last first. */
function userIdsOf(s: SessionSummary): (string | null)[] {
  return [s.userId, ...(s.otherUserIds ?? [])];
}

/** Every anonymousId the session's chunks carried, the last first. */
function anonymousIdsOf(s: SessionSummary): (string | null)[] {
  return [s.anonymousId, ...(s.otherAnonymousIds ?? [])];
}

/** Whether the session is one of the subject's, by any id its chunks carried (each as the lake matches an event). */
function isSessionOf(subject: ErasureSubject, s: SessionSummary): boolean {
  return (
    userIdsOf(s).some((userId) => isSubject(subject, { userId })) ||
    anonymousIdsOf(s).some((anonymousId) => isSubject(subject, { anonymousId }))
  );
}

/** Tenants with recordings. */
export async function recordingTenants(bucket: R2Bucket): Promise<string[]> {
  const root = `${RECORDINGS_PREFIX}/tenant=`;
  const { prefixes } = await listAll(bucket, { prefix: root, delimiter: "/" });
  return prefixes.map((p) => p.slice(root.length, -1));
}

/**
 * Retention: erases the sessions that started on a day that ended `retentionMs` or longer before
 * `now`, then deletes whatever else is filed under those days (chunks whose index was never
 * written). Answers the sessions erased.
 */
export async function retainRecordings(
  bucket: R2Bucket,
  ns: RecordingNamespace,
  tenant: string,
  retentionMs: number,
  now: number,
): Promise<number> {
  const root = `${tenantRoot(tenant)}sessions/dt=`;
  const { prefixes } = await listAll(bucket, { prefix: root, delimiter: "/" });
  let erased = 0;
  for (const prefix of prefixes) {
    const day = prefix.slice(root.length, -1);
    if (Date.parse(`${day}T00:00:00Z`) + DAY_MS > now - retentionMs) continue;
    for (const { summary } of await indexed(bucket, prefix)) {
      await sessionRecording(ns, tenant, summary.session).erase();
      erased++;
    }
    const left = await listAll(bucket, { prefix: `${tenantRoot(tenant)}dt=${day}/` });
    await deleteAll(
      bucket,
      left.objects.map((o) => o.key),
    );
  }
  return erased;
}
