// Types for events.mjs, so the TypeScript encode worker is checked against the real StoredEvent.
import type { EventInput, StoredEvent } from "../../src/protocol/events";

export declare const BASE_TS: number;
export declare function eventId(i: number): string;
export declare function eventInput(i: number): EventInput & { id: string; timestamp: number };
export declare function storedEvent(i: number, tenant?: string, replica?: string): StoredEvent;
export declare function storedEvents(n: number): StoredEvent[];
