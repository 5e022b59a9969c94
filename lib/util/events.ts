/** A typed `EventTarget` whose events carry a `detail`, as js-libp2p's services emit them. */

/**
 * Listener of one typed event.
 *
 * @example
 * ```ts
 * const onMessage: TypedListener<{ id: string }> = (e) => console.log(e.detail.id);
 * ```
 */
export type TypedListener<T> = (event: CustomEvent<T>) => void;

/**
 * An `EventTarget` with typed `addEventListener`/`removeEventListener` for the events in `M`
 * (event name → detail type) and a `dispatch` helper for the owner.
 *
 * @example
 * ```ts
 * const events = new TypedEventTarget<{ tick: number }>();
 * events.addEventListener("tick", (e) => console.log(e.detail));
 * events.dispatch("tick", 1);
 * ```
 */
export class TypedEventTarget<M extends object> extends EventTarget {
  override addEventListener<K extends keyof M & string>(
    type: K,
    listener: TypedListener<M[K]> | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | TypedListener<never> | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  override removeEventListener<K extends keyof M & string>(
    type: K,
    listener: TypedListener<M[K]> | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | TypedListener<never> | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(
      type,
      listener as EventListenerOrEventListenerObject | null,
      options,
    );
  }

  /** Dispatches `type` with `detail`; a listener that throws does not stop the others. */
  dispatch<K extends keyof M & string>(type: K, detail: M[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
