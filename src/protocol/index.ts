export * from "./auth";
export * from "./errors";
export * from "./events";
export * from "./frames";
export * from "./limits";
export * from "./routes";
