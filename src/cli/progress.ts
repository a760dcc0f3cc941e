import type { JobEvent, Progress } from "../core/types.js";

/** Shows a job's events as they arrive. The same events drive every backend. */
export interface ProgressView {
  update(event: JobEvent): void;
  /** Stops redrawing and leaves the last line on screen. */
  finish(): void;
}

export interface ProgressViewOptions {
  /** Redraw one bar in place (a terminal) instead of printing timestamped lines (CI logs). */
  tty: boolean;
  /** Print only warnings and errors (e.g. under `--json`). */
  quiet?: boolean;
  /** Also print debug log lines. */
  verbose?: boolean;
  /** Terminal width; the bar is cut to fit. */
  columns?: number;
  /** Least time between two plain progress lines (default 1 s); state changes always print. */
  minLineIntervalMs?: number;
  now?: () => number;
}

type Stream = Pick<NodeJS.WritableStream, "write">;

/** A progress bar on a TTY, plain lines otherwise, nothing but problems when quiet. */
export function createProgressView(stream: Stream, options: ProgressViewOptions): ProgressView {
  if (options.quiet) return new LineView(stream, { ...options, progressLines: false });
  return options.tty
    ? new BarView(stream, options)
    : new LineView(stream, { ...options, progressLines: true });
}

/** Elapsed time, rate and ETA from the progress seen so far (wall clock of this process). */
export class ProgressClock {
  readonly #now: () => number;
  readonly #start: number;
  #first: { at: number; steps: number } | undefined;
  #last: { at: number; steps: number } | undefined;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#start = now();
  }

  observe(progress: Progress): void {
    const point = { at: this.#now(), steps: progress.completedSteps };
    if (!this.#first) this.#first = point;
    this.#last = point;
  }

  get elapsedMs(): number {
    return this.#now() - this.#start;
  }

  /** Milliseconds left at the observed step rate; undefined until the rate is known. */
  etaMs(progress: Progress): number | undefined {
    const first = this.#first;
    const last = this.#last;
    if (!first || !last || progress.totalSteps === undefined) return undefined;
    const steps = last.steps - first.steps;
    const time = last.at - first.at;
    if (steps <= 0 || time <= 0) return undefined;
    const left = Math.max(0, progress.totalSteps - progress.completedSteps);
    return (left * time) / steps;
  }
}

/** `m:ss` or `h:mm:ss`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** The current loss: the last snapshot's, else a `loss` metric. */
export function currentLoss(progress: Progress): number | undefined {
  return progress.snapshots.at(-1)?.meanLoss ?? progress.metrics?.loss;
}

/** Tokens per second, when the backend reports it (local training does). */
export function tokensPerSecond(progress: Progress): number | undefined {
  const m = progress.metrics;
  return m?.tokensPerSecond ?? m?.tokens_per_second ?? m?.tokensPerSec;
}

export function percentOf(progress: Progress): number | undefined {
  if (progress.completedPercent !== undefined) return progress.completedPercent;
  if (!progress.totalSteps) return undefined;
  return Math.min(100, (100 * progress.completedSteps) / progress.totalSteps);
}

/** `step 45/100 · epoch 2 · loss 0.1234 · 1,234 tok/s` — the parts both views share. */
export function describeProgress(progress: Progress): string[] {
  const parts = [
    `step ${progress.completedSteps}${progress.totalSteps === undefined ? "" : `/${progress.totalSteps}`}`,
  ];
  if (progress.epoch !== undefined) parts.push(`epoch ${progress.epoch}`);
  const loss = currentLoss(progress);
  if (loss !== undefined) parts.push(`loss ${formatLoss(loss)}`);
  const tps = tokensPerSecond(progress);
  if (tps !== undefined) parts.push(`${Math.round(tps).toLocaleString("en-US")} tok/s`);
  return parts;
}

export function formatLoss(loss: number): string {
  return Math.abs(loss) >= 100 ? loss.toFixed(1) : loss.toPrecision(4);
}

function logLine(event: JobEvent, verbose: boolean | undefined): string | undefined {
  switch (event.type) {
    case "state":
      return `state: ${event.state}`;
    case "log":
      return event.level === "debug" && !verbose ? undefined : `${event.level}: ${event.message}`;
    case "error":
      return `error: ${event.error.message}`;
    default:
      return undefined;
  }
}

/** Timestamped lines for logs that are not a terminal. */
class LineView implements ProgressView {
  readonly #stream: Stream;
  readonly #options: ProgressViewOptions & { progressLines: boolean };
  readonly #clock: ProgressClock;
  readonly #now: () => number;
  #lastLineAt = Number.NEGATIVE_INFINITY;
  #lastSteps = -1;
  #pending: Progress | undefined;

  constructor(stream: Stream, options: ProgressViewOptions & { progressLines: boolean }) {
    this.#stream = stream;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#clock = new ProgressClock(this.#now);
  }

  update(event: JobEvent): void {
    if (event.type === "progress") {
      this.#clock.observe(event.progress);
      if (!this.#options.progressLines || event.progress.completedSteps === this.#lastSteps) return;
      const last =
        event.progress.totalSteps !== undefined &&
        event.progress.completedSteps >= event.progress.totalSteps;
      const minGap = this.#options.minLineIntervalMs ?? 1000;
      if (!last && this.#now() - this.#lastLineAt < minGap) {
        this.#pending = event.progress;
        return;
      }
      this.#progressLine(event.progress);
      return;
    }
    if (
      this.#options.quiet &&
      !(event.type === "error" || (event.type === "log" && event.level === "warning"))
    ) {
      return;
    }
    const line = logLine(event, this.#options.verbose);
    if (line === undefined) return;
    // A state change ends a phase: show the latest progress first so the log reads in order.
    if (event.type === "state") this.#flush();
    this.#write(line);
  }

  finish(): void {
    this.#flush();
  }

  #flush(): void {
    if (this.#pending && this.#pending.completedSteps !== this.#lastSteps)
      this.#progressLine(this.#pending);
    this.#pending = undefined;
  }

  #progressLine(progress: Progress): void {
    this.#pending = undefined;
    this.#lastSteps = progress.completedSteps;
    this.#lastLineAt = this.#now();
    const parts = describeProgress(progress);
    const percent = percentOf(progress);
    if (percent !== undefined) parts[0] = `${parts[0]} (${Math.floor(percent)}%)`;
    parts.push(`elapsed ${formatDuration(this.#clock.elapsedMs)}`);
    const eta = this.#clock.etaMs(progress);
    if (eta !== undefined && (percent ?? 0) < 100) parts.push(`ETA ${formatDuration(eta)}`);
    this.#write(parts.join(" · "));
  }

  #write(line: string): void {
    const stamp = new Date(this.#now()).toISOString().replace(/\.\d+Z$/, "Z");
    this.#stream.write(`[${stamp}] ${line}\n`);
  }
}

const FILLED = "█";
const EMPTY = "░";

/** One line redrawn in place on a terminal; log lines scroll above it. */
class BarView implements ProgressView {
  readonly #stream: Stream;
  readonly #options: ProgressViewOptions;
  readonly #clock: ProgressClock;
  readonly #timer: NodeJS.Timeout;
  #progress: Progress | undefined;
  #state = "pending";
  #drawn = false;

  constructor(stream: Stream, options: ProgressViewOptions) {
    this.#stream = stream;
    this.#options = options;
    this.#clock = new ProgressClock(options.now);
    // Keep elapsed/ETA moving between status checks; never keeps the process alive.
    this.#timer = setInterval(() => this.#draw(), 1000);
    this.#timer.unref();
  }

  update(event: JobEvent): void {
    if (event.type === "progress") {
      this.#progress = event.progress;
      this.#clock.observe(event.progress);
    } else if (event.type === "state") {
      this.#state = event.state;
    } else if (event.type === "snapshot") {
      return; // the progress event that follows carries it
    } else {
      const line = logLine(event, this.#options.verbose);
      if (line !== undefined) {
        this.#clear();
        this.#stream.write(`${line}\n`);
      }
    }
    this.#draw();
  }

  finish(): void {
    clearInterval(this.#timer);
    this.#draw();
    if (this.#drawn) this.#stream.write("\n");
    this.#drawn = false;
  }

  #clear(): void {
    if (this.#drawn) this.#stream.write("\r\x1b[2K");
    this.#drawn = false;
  }

  #draw(): void {
    const line = this.render();
    this.#clear();
    this.#stream.write(line);
    this.#drawn = true;
  }

  /** The bar as text (exported for tests through `renderBar`). */
  render(): string {
    // A pseudo-terminal without a size reports 0 columns.
    return renderBar(this.#state, this.#progress, this.#clock, this.#options.columns || 80);
  }
}

/** One bar line: `running ████░░░░ 45% · step 45/100 · epoch 2 · loss 0.1234 · 0:12 · ETA 0:15`. */
export function renderBar(
  state: string,
  progress: Progress | undefined,
  clock: ProgressClock,
  columns: number,
): string {
  const parts: string[] = [];
  const elapsed = `${formatDuration(clock.elapsedMs)} elapsed`;
  const max = Math.max(10, columns - 1);
  let bar = "";
  if (!progress) {
    parts.push(`${state}…`, elapsed);
  } else {
    const percent = percentOf(progress);
    parts.push(...describeProgress(progress), elapsed);
    const eta = clock.etaMs(progress);
    if (eta !== undefined && (percent ?? 0) < 100) parts.push(`ETA ${formatDuration(eta)}`);
    if (percent !== undefined) {
      // The bar takes what the text leaves, between 10 and 30 cells.
      const text = [...parts.join(" · ")].length;
      const width = Math.max(10, Math.min(30, max - text - 8));
      const filled = Math.round((percent / 100) * width);
      bar = `${FILLED.repeat(filled)}${EMPTY.repeat(width - filled)} ${Math.floor(percent)}% · `;
    }
  }
  const line = bar + parts.join(" · ");
  return [...line].length > max ? `${[...line].slice(0, max - 1).join("")}…` : line;
}
