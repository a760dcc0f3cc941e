import type { TuningJob } from "../../core/types.js";
import { createBackend } from "../backends.js";
import { followJob } from "../follow.js";
import type { Output } from "../output.js";

/** What `tunekit resume` needs of the local tuner (loaded lazily, so typed structurally). */
interface ResumableTuner {
  resume(dir: string): Promise<TuningJob>;
}

/**
 * `tunekit resume <run>`: continues a cancelled, failed or interrupted local run from its
 * last complete checkpoint, with the run's own data and settings, and shows its progress
 * until it ends (Ctrl-C cancels it again and keeps the newest checkpoint).
 */
export async function resumeCommand(dir: string, out: Output): Promise<number> {
  const backend = await createBackend("local", {}, out.io.env);
  const job = await (backend.tuner as unknown as ResumableTuner).resume(dir);
  out.note(`resuming ${job.name}`);
  return followJob(job, backend, out);
}
