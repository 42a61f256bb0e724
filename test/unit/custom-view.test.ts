import { describe, expect, it } from "vitest";
import { mergePartials, ViewStore } from "../../src/views/buckets";
import { BUILTIN_VIEWS, type ViewDefinition, type ViewEvent } from "../../src/views/views";

// The custom view of the README, verbatim.
const signupsByPlan: ViewDefinition<{ n: number }, { plan: string; signups: number }> = {
  name: "signups",
  orderBy: "signups",
  key: (e) => (e.type === "signup" ? String(e.data.plan ?? "free") : null),
  init: () => ({ n: 0 }),
  add: (p) => ({ n: p.n + 1 }),
  merge: (a, b) => ({ n: a.n + b.n }),
  finalize: (p, plan) => ({ plan, signups: p.n }),
};

const signup = (i: number, plan?: string): ViewEvent => ({
  id: `s${i}`,
  ts: 0,
  receivedAt: 1_764_000_000_000 + i,
  source: "web",
  type: "signup",
  importance: "normal",
  userId: null,
  anonymousId: null,
  sessionId: null,
  data: plan ? { plan } : {},
});

describe("the README's custom view", () => {
  it("counts per key on each replica and merges across replicas", () => {
    const replicas = [
      new ViewStore([...BUILTIN_VIEWS, signupsByPlan]),
      new ViewStore([...BUILTIN_VIEWS, signupsByPlan]),
    ];
    for (let i = 0; i < 9; i++) replicas[i % 2]?.add(signup(i, i % 3 === 0 ? "pro" : undefined));
    const replies = replicas.map((r) => JSON.parse(JSON.stringify(r.serializePartials("signups", 0, 2e12))));
    expect(mergePartials(signupsByPlan, replies)).toEqual([
      { plan: "free", signups: 6 },
      { plan: "pro", signups: 3 },
    ]);
  });
});
