/**
 * The actor contract: pure logic that never touches threads, sockets or
 * files. The worker host (or a test) owns the state and feeds it messages;
 * the logic hands results to `emit`. Time comes in as an argument so tests
 * and replays control it.
 *
 * @example
 *   const s = logic.init();
 *   logic.handle(s, batch, (r) => results.push(r));
 *   logic.tick?.(s, Date.now(), (r) => results.push(r));
 *   const copy = logic.restore(logic.snapshot(s));
 */
export interface ActorLogic<State, In, Out> {
  init(): State;
  handle(state: State, msg: In, emit: (out: Out) => void): void;
  tick?(state: State, nowMs: number, emit: (out: Out) => void): void;
  /** Plain data (MessagePack-encodable) from which restore() rebuilds the state. */
  snapshot(state: State): unknown;
  restore(snapshot: unknown): State;
}
