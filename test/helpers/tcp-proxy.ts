import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

/** A TCP proxy to the Worker that can be down, swallow what the Worker sends, or cut every connection. */
export class TcpProxy {
  muted = false;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    /** The Worker's port; point it elsewhere to follow a restarted server. */
    public target: number,
  ) {}

  static async create(target: number): Promise<TcpProxy> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    return new TcpProxy(port, target);
  }

  up(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = tcpConnect(this.target, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream);
      upstream.on("data", (chunk) => this.muted || client.write(chunk));
      upstream.on("close", () => client.destroy());
      client.on("close", () => upstream.destroy());
    });
    return new Promise((resolve) => this.server?.listen(this.port, "127.0.0.1", resolve));
  }

  /** Cuts every connection without a close frame, as a network failure does. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async down(): Promise<void> {
    this.cut();
    await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
  }
}
