import { type AddressInfo, createServer } from "node:net";

/** A port on 127.0.0.1 that nothing listens on (taken, then let go): a server that is down. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}
