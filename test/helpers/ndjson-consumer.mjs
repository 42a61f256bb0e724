// The reading end of a pipe in the CLI tests: takes NDJSON lines from stdin, fails on any that is
// not JSON, echoes each, and exits once it has read the event whose id is argv[2].
import { createInterface } from "node:readline";

const lastId = process.argv[2];
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  const event = JSON.parse(line); // throws (exit 1) on anything but JSON
  process.stdout.write(`${JSON.stringify(event)}\n`);
  if (event.id === lastId) process.exit(0);
}
