/**
 * `TensorBoardWriter`: scalars to a TensorBoard event file, written and flushed as they come,
 * so `tensorboard --logdir runs/` shows a run live.
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  decodeEvent,
  encodeFileVersionEvent,
  encodeScalarEvent,
  type ScalarValue,
  type TensorBoardEvent,
} from "./event.js";
import { frameRecord, readRecords } from "./records.js";

/**
 * Writes `events.out.tfevents.<seconds>.<host>` in `logdir` (created if missing): a file version
 * record, then one event per {@link TensorBoardWriter.scalars} call. Each event is written
 * through to the file at once (no buffering), so a killed process loses nothing written.
 *
 * @example
 * ```ts
 * const writer = new TensorBoardWriter("runs/experiment-1");
 * writer.scalars(1, { "train/loss": 2.31, "train/learning_rate": 1e-4 });
 * writer.close();
 * // then: tensorboard --logdir runs/
 * ```
 */
export class TensorBoardWriter {
  /** The event file's path. */
  readonly path: string;
  #fd: number | undefined;

  constructor(logdir: string, options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => Date.now() / 1000);
    mkdirSync(logdir, { recursive: true });
    const seconds = Math.floor(this.#now());
    this.path = join(logdir, `events.out.tfevents.${seconds}.${hostname()}.tunekit`);
    this.#fd = openSync(this.path, "a");
    this.#write(encodeFileVersionEvent(this.#now()));
  }

  readonly #now: () => number;

  #write(event: Uint8Array): void {
    if (this.#fd === undefined) throw new Error(`${this.path} is closed`);
    writeSync(this.#fd, frameRecord(event));
  }

  /**
   * Writes the finite values of `values` as scalars at `step` (one event). NaN and infinite
   * values are skipped: TensorBoard cannot chart them.
   */
  scalars(step: number, values: Readonly<Record<string, number | undefined>>): void {
    const scalars: ScalarValue[] = [];
    for (const [tag, value] of Object.entries(values)) {
      if (typeof value === "number" && Number.isFinite(value)) scalars.push({ tag, value });
    }
    if (scalars.length > 0) this.#write(encodeScalarEvent(this.#now(), step, scalars));
  }

  /** Closes the file; later writes throw. Calling it again does nothing. */
  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/**
 * The events of a TensorBoard event file, every record's CRCs checked.
 *
 * @example
 * ```ts
 * for (const event of readTensorBoardEvents(writer.path)) console.log(event.step, event.scalars);
 * ```
 * @throws InvalidOptionError when a record's CRC does not match.
 */
export function readTensorBoardEvents(path: string): TensorBoardEvent[] {
  return readRecords(readFileSync(path), path).map(decodeEvent);
}
