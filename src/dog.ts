/**
 * dog's classes with the types DuckTail uses. dog 1.1.3 ships loose typings (its Bindings
 * type has no R2Bucket and names an undeclared ModuleWorker namespace), so we narrow them here once.
 */
import * as dog from "dog";

export interface DogLinks {
  parent: DurableObjectNamespace;
  self: DurableObjectNamespace;
}

export interface DogReplica {
  readonly uid: string;
  fetch(input: RequestInfo, init?: RequestInit): Promise<Response>;
  gossip(msg: Record<string, unknown>): Promise<unknown[]>;
  /** To every socket of this replica (dog's pool). */
  emit(msg: string | Record<string, unknown>): void;
  /** To every socket of every replica in the group. */
  broadcast(msg: string | Record<string, unknown>): Promise<void>;
  /** To one client's sockets, on whichever replica holds them. */
  whisper(target: string, msg: string | Record<string, unknown>): Promise<void>;
}

export interface DogGroup {
  readonly uid: string;
  fetch(input: RequestInfo, init?: RequestInit): Promise<Response>;
}

type Ctor<T> = abstract new (state: DurableObjectState, env: never) => T;

export const Replica = dog.Replica as unknown as Ctor<DogReplica>;
export const Group = dog.Group as unknown as Ctor<DogGroup>;

/** dog's `identify`: asks the group which replica serves `clientId`, returns a stub that adds dog's headers. */
export const identify = dog.identify as unknown as (
  groupId: DurableObjectId,
  clientId: string,
  family: { parent: Pick<DurableObjectNamespace, "get">; child: DurableObjectNamespace },
) => Promise<DurableObjectStub>;
