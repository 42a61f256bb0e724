import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { configDefaults, defineConfig } from "vitest/config";

/** `.sql` files import as their text in Node, as wrangler's default module rules import them in the Worker. */
const sqlText = {
  name: "sql-text",
  transform(code: string, id: string) {
    return id.endsWith(".sql") ? { code: `export default ${JSON.stringify(code)};`, map: null } : undefined;
  },
};

export default defineConfig({
  test: {
    globalSetup: ["test/helpers/build-sdk.ts"],
    projects: [
      {
        plugins: [sqlText],
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // Small limits so thresholds, drops and retries are reachable in a test.
            miniflare: {
              bindings: {
                FLUSH_THRESHOLD_ROWS: "400",
                MAX_BUFFER_BYTES: "60000",
                FLUSH_RETRY_BASE_MS: "50",
                REPLICA_CONNECTION_LIMIT: "3",
                HIGH_FLUSH_INTERVAL_MS: "1000",
                FLUSH_INTERVAL_MS: "30000",
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/workers/hibernating/**"],
          testTimeout: 20_000,
        },
      },
      {
        // HibernatingReplica on its own: a bare dog Group and replica from a test-only Worker.
        plugins: [
          cloudflareTest({
            main: "./test/workers/hibernating/worker.ts",
            miniflare: {
              compatibilityDate: "2026-11-01",
              durableObjects: {
                GROUP: { className: "FixtureGroup", useSQLite: true },
                REPLICA: { className: "FixtureReplica", useSQLite: true },
              },
            },
          }),
        ],
        test: { name: "hibernating", include: ["test/workers/hibernating/**/*.test.ts"], testTimeout: 20_000 },
      },
      {
        plugins: [sqlText],
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
