/**
 * @internal What both fake tuning services add to the request pipeline: the pacing of their
 * simulated jobs (auto mode: each status poll advances a job; manual mode: only the clock does)
 * and the test controls that move time.
 */
import { FakeHttpService } from "./http.js";
import { completeJobs, type SimulatedJob } from "./job-simulation.js";

export abstract class FakeTuningService<R extends string> extends FakeHttpService<R> {
  #stepsPerPoll = 5;

  /** Fake time one tuning step takes. */
  protected abstract readonly stepDurationMs: number;
  /** Every simulated job the service holds. */
  protected abstract simulatedJobs(): Iterable<SimulatedJob>;

  /** Steps a status poll advances a running job by (0 = manual mode). */
  get stepsPerPoll(): number {
    return this.#stepsPerPoll;
  }

  set stepsPerPoll(steps: number) {
    if (!Number.isInteger(steps) || steps < 0)
      throw new RangeError(`stepsPerPoll must be an integer ≥ 0, got ${steps}`);
    this.#stepsPerPoll = steps;
  }

  /** Move fake time forward; running jobs progress one step per `stepDurationMs`. */
  advance(ms: number): void {
    this.clock.advance(ms);
  }

  /** Move fake time forward by `steps` tuning steps. */
  tick(steps = 1): void {
    this.clock.advance(steps * this.stepDurationMs);
  }

  /** Run every unfinished job to its end (success, planned failure or cancellation). */
  completeAll(): void {
    completeJobs(this.simulatedJobs(), (ms) => this.clock.advance(ms));
  }

  /** A poll in auto mode advances `job` (and fake time) by `stepsPerPoll` steps. */
  protected poll(job: SimulatedJob): void {
    if (!job.terminal && this.#stepsPerPoll > 0) {
      const ms = this.#stepsPerPoll * this.stepDurationMs;
      this.clock.skip(ms);
      job.advance(ms);
    }
  }
}
