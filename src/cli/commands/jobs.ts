import { isTerminalState } from "../../core/types.js";
import { backendForName, createBackend, type RemoteFlags } from "../backends.js";
import { EXIT } from "../exit-codes.js";
import { adviceJson, curveSummary, followJob, jobLabel, progressJson } from "../follow.js";
import type { Output } from "../output.js";
import { describeProgress, percentOf } from "../progress.js";

/** A job's backend and the job itself, from a job or model name. */
async function attach(name: string, flags: RemoteFlags, out: Output) {
  const backend = await createBackend(backendForName(name), flags, out.io.env);
  return { backend, job: await backend.tuner.getJob(name) };
}

/** `tunekit status <name>`: one look at a job: state, progress, loss sparkline and advice. */
export async function statusCommand(
  name: string,
  flags: RemoteFlags,
  out: Output,
): Promise<number> {
  const { job } = await attach(name, flags, out);
  const progress = job.progress();
  const state = job.state();
  const label = jobLabel(job);
  const { lines, advice } = curveSummary(progress);
  out.result(
    {
      name: label,
      job: job.name,
      state,
      progress: progressJson(progress),
      advice: adviceJson(advice),
    },
    () => {
      const steps = describeProgress(progress);
      const percent = percentOf(progress);
      if (percent !== undefined) steps[0] = `${steps[0]} (${Math.floor(percent)}%)`;
      const text = [
        `${label}  ${state}`,
        `  ${steps.join(" · ")}`,
        ...lines.map((line) => `  ${line}`),
      ];
      if (state === "succeeded") text.push(`  try it: tunekit generate ${label} "your input"`);
      else if (!isTerminalState(state)) text.push(`  follow it: tunekit watch ${label}`);
      return text.join("\n");
    },
  );
  return EXIT.ok;
}

/** `tunekit watch <name>`: follow a running job (Ctrl-C stops watching, not the job). */
export async function watchCommand(name: string, flags: RemoteFlags, out: Output): Promise<number> {
  const { backend, job } = await attach(name, flags, out);
  return followJob(job, backend, out);
}

/** `tunekit cancel <name>`: ask the backend to stop the job and wait until it has. */
export async function cancelCommand(
  name: string,
  flags: RemoteFlags,
  out: Output,
): Promise<number> {
  const { job } = await attach(name, flags, out);
  const label = jobLabel(job);
  const before = job.state();
  if (isTerminalState(before)) {
    out.result(
      { name: label, job: job.name, state: before, cancelled: false },
      () => `${label} already ended (${before}); nothing to cancel`,
    );
    return EXIT.ok;
  }
  out.note(`cancelling ${label}…`);
  await job.cancel();
  const state = job.state();
  out.result({ name: label, job: job.name, state, cancelled: state === "cancelled" }, () =>
    state === "cancelled"
      ? `cancelled ${label}`
      : `${label} ended as ${state} before the cancellation took effect`,
  );
  return EXIT.ok;
}
