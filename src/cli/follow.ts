import { adviseEpochs } from "../core/loss-curve/analyze.js";
import { sparkline } from "../core/loss-curve/sparkline.js";
import { isTerminalState, type Progress, type TunedModel, type TuningJob } from "../core/types.js";
import type { CliBackend } from "./backends.js";
import { EXIT } from "./exit-codes.js";
import type { Output } from "./output.js";
import { createProgressView, currentLoss, formatLoss } from "./progress.js";
import { canPrompt, confirm } from "./prompt.js";

/** The name a person re-attaches with: the tuned model for Gemini (not its operation). */
export function jobLabel(job: TuningJob): string {
  return (job as { tunedModelName?: string }).tunedModelName ?? job.name;
}

/** The progress fields worth printing or serialising (snapshots included). */
export function progressJson(progress: Progress): Record<string, unknown> {
  const { snapshots, ...rest } = progress;
  return { ...rest, snapshots };
}

/** The loss sparkline and the plateau advice, as printed after a run and by `status`. */
export function curveSummary(progress: Progress): {
  lines: string[];
  advice: ReturnType<typeof adviseEpochs>;
} {
  const advice = adviseEpochs(progress.snapshots);
  const lines: string[] = [];
  const losses = progress.snapshots.map((s) => s.meanLoss);
  if (losses.length > 0) {
    const first = losses[0] as number;
    const last = losses.at(-1) as number;
    lines.push(`loss ${sparkline(losses, 40)}  ${formatLoss(first)} → ${formatLoss(last)}`);
  }
  if (progress.snapshots.length > 0) lines.push(advice.message);
  return { lines, advice };
}

export function adviceJson(advice: ReturnType<typeof adviseEpochs>): Record<string, unknown> {
  return {
    kind: advice.kind,
    message: advice.message,
    suggestedEpochCount: advice.suggestedEpochCount,
  };
}

/**
 * Shows a job's progress until it ends or the user presses Ctrl-C, then prints the outcome.
 * Returns the exit code; a failed or cancelled job throws (exit 5 through `Output.error`).
 *
 * Ctrl-C follows the backend's policy: `detach` (remote) stops watching — the job keeps
 * running — and, on a terminal, asks whether to cancel it too; `cancel` (local) cancels the
 * job, which stops at a clean point and keeps its last checkpoint.
 */
export async function followJob(job: TuningJob, backend: CliBackend, out: Output): Promise<number> {
  const { io } = out;
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  io.interrupt?.addEventListener("abort", onInterrupt, { once: true });
  if (io.interrupt?.aborted) stop.abort();
  const view = createProgressView(io.stderr, {
    tty: io.stderr.isTTY === true,
    quiet: out.json,
    verbose: out.flags.verbose === true,
    ...(io.stderr.columns === undefined ? {} : { columns: io.stderr.columns }),
  });
  try {
    for await (const event of job.events({ signal: stop.signal })) view.update(event);
  } finally {
    view.finish();
    io.interrupt?.removeEventListener("abort", onInterrupt);
  }
  if (!isTerminalState(job.state())) {
    return backend.interrupt === "detach" ? detach(job, backend, out) : cancelLocal(job, out);
  }
  const model = await job.wait();
  return finished(job, model, out);
}

/** Prints the outcome of a job that succeeded: loss curve, advice and where the model is. */
export function finished(job: TuningJob, model: TunedModel, out: Output): number {
  const progress = job.progress();
  const { lines, advice } = curveSummary(progress);
  const loss = currentLoss(progress);
  out.result(
    {
      name: model.name,
      job: job.name,
      state: job.state(),
      model: model.info(),
      progress: progressJson(progress),
      advice: adviceJson(advice),
    },
    () => {
      const facts = [
        `${progress.completedSteps} steps`,
        progress.epoch === undefined ? undefined : `${progress.epoch} epochs`,
        loss === undefined ? undefined : `final loss ${formatLoss(loss)}`,
      ].filter(Boolean);
      return [
        `done: ${model.name} is ready (${facts.join(", ")})`,
        ...lines,
        `try it:  tunekit generate ${model.name} "your input"`,
        `details: tunekit get ${model.name}    curve: tunekit plot ${model.name} --out loss.svg`,
      ].join("\n");
    },
  );
  return EXIT.ok;
}

/** Ctrl-C on a remote job: stop polling, offer to cancel, say how to come back. */
async function detach(job: TuningJob, backend: CliBackend, out: Output): Promise<number> {
  const { io } = out;
  (job as { detach?: () => void }).detach?.();
  const name = jobLabel(job);
  const reattach = backend.reattach?.(name) ?? `tunekit watch ${name}`;
  const cancelCommand = `tunekit cancel ${name}`;
  // Only a person at a terminal is asked; SIGTERM (a supervisor stopping us) never asks.
  const ask = canPrompt(io) && !out.json && io.interrupt?.reason !== "SIGTERM";
  out.note(`stopped watching ${name}; the job keeps running on the service`);
  for (const line of curveSummary(job.progress()).lines.slice(0, 1)) out.note(`${line} (so far)`);
  let cancelled = false;
  if (ask && (await confirm("Cancel the remote job too? [y/N] ", io))) {
    out.note(`cancelling ${name}…`);
    await job.cancel();
    cancelled = true;
    out.note(`cancelled ${name} (state: ${job.state()})`);
  } else {
    out.note(`re-attach: ${reattach}`);
    out.note(`cancel:    ${cancelCommand}`);
  }
  out.result(
    {
      name,
      job: job.name,
      state: job.state(),
      detached: true,
      cancelled,
      progress: progressJson(job.progress()),
      reattach,
      cancel: cancelCommand,
    },
    () => undefined,
  );
  return EXIT.interrupted;
}

/**
 * Ctrl-C on a job running in this process: cancel it and wait for it to stop.
 * The local backend's job stops after the current step and keeps its last checkpoint
 * (its error/model says where); a second Ctrl-C exits at once (see main.ts).
 */
async function cancelLocal(job: TuningJob, out: Output): Promise<number> {
  const name = jobLabel(job);
  out.note(`cancelling ${name} (the last checkpoint is kept)…`);
  await job.cancel();
  const outcome = await job.wait().then(
    () => "succeeded before it could stop",
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  out.note(outcome);
  if (job.state() !== "succeeded") out.note(`resume: tunekit resume ${name}`);
  out.result(
    {
      name,
      job: job.name,
      state: job.state(),
      cancelled: true,
      resume: `tunekit resume ${name}`,
      progress: progressJson(job.progress()),
    },
    () => undefined,
  );
  return EXIT.interrupted;
}
