/** Types of the parts of cli-progress used here (@types/cli-progress drags in @types/node, whose DOM types clash with Deno's). */

/** Where a bar is drawn: a terminal-like stream. */
export interface BarStream {
  isTTY: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

/** Options of a bar (the subset used here). */
export interface BarOptions {
  stream?: BarStream;
  format?: string;
  hideCursor?: boolean;
  barsize?: number;
}

/** A preset's characters. */
export interface Preset {
  barCompleteChar: string;
  barIncompleteChar: string;
}

/** One progress bar. */
export class SingleBar {
  constructor(options: BarOptions, preset?: Preset);
  start(total: number, value: number, payload?: Record<string, unknown>): void;
  update(value: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  getTotal(): number;
  stop(): void;
}

/** Built-in looks. */
export const Presets: { shades_classic: Preset };

declare const cliProgress: { SingleBar: typeof SingleBar; Presets: typeof Presets };
export default cliProgress;
