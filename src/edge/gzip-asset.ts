/**
 * A static asset stored gzipped (`<name>.gz`, see sdk/dashboard/wasm-assets.mjs): DuckDB-wasm's
 * 34 MB module is over the 25 MiB limit of one Workers asset, its gzip (~7.6 MB) is not. It is
 * answered as `<name>` with `Content-Encoding: gzip` and the body passed through as stored
 * (`encodeBody: "manual"`), so the browser inflates it and WebAssembly.instantiateStreaming sees
 * `application/wasm`.
 */

const TYPES: Record<string, string> = {
  ".wasm": "application/wasm",
  ".js": "text/javascript; charset=utf-8",
};

export function isGzippedAsset(path: string): boolean {
  return path.endsWith(".gz");
}

export function gzippedAsset(res: Response, path: string): Response {
  if (!res.ok) return res;
  const inner = path.slice(0, -".gz".length);
  const type = TYPES[inner.slice(inner.lastIndexOf("."))] ?? "application/octet-stream";
  const headers = new Headers(res.headers);
  headers.set("content-type", type);
  headers.set("content-encoding", "gzip");
  headers.delete("content-length"); // the inflated length differs; the stored one travels as is
  return new Response(res.body, { status: res.status, headers, encodeBody: "manual" });
}
