// `ducktail/protocol`: what a client sees on the wire (events, frames, the live tail's filters
// and frames, limits, error codes). The routes and headers between DuckTail's own objects
// (./routes) and key resolution (./auth) are internal and not exported here.
export * from "./errors";
export * from "./events";
export * from "./frames";
export * from "./limits";
export * from "./recording";
export * from "./tail";
