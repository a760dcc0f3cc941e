import { describe, expect, it } from "vitest";
import {
  AbortedError,
  TimeoutError,
  TuningCancelledError,
  TuningFailedError,
} from "../../src/core/errors.js";
import { JobStateMachine, ManagedTuningJob } from "../../src/core/job-state.js";
import type { JobEvent, TunedModel } from "../../src/core/types.js";
import { collect } from "../helpers.js";

const model: TunedModel = {
  name: "tunedModels/demo",
  baseModel: "models/base",
  info: () => ({ name: "tunedModels/demo", baseModel: "models/base", state: "active" }),
  generate: async (input) => input,
};

const snapshot = (step: number, meanLoss: number) => ({
  step,
  epoch: 1,
  meanLoss,
  computeTime: new Date(0).toISOString(),
});

describe("JobStateMachine", () => {
  it("delivers every event to several concurrent subscribers and ends at the terminal state", async () => {
    const machine = new JobStateMachine("job");
    const first = collect(machine.events());
    const second = collect(machine.events());
    await Promise.resolve();
    machine.start();
    machine.setProgress({ completedSteps: 1, totalSteps: 2, snapshots: [snapshot(1, 2.0)] });
    machine.setProgress({
      completedSteps: 2,
      totalSteps: 2,
      snapshots: [snapshot(1, 2.0), snapshot(2, 1.0)],
    });
    machine.succeed(model);
    const [a, b] = await Promise.all([first, second]);
    const types = a.map((e) => (e.type === "state" ? `state:${e.state}` : e.type));
    expect(types).toEqual([
      "state:pending",
      "state:running",
      "snapshot",
      "progress",
      "snapshot",
      "progress",
      "state:succeeded",
    ]);
    expect(b.map((e) => e.type)).toEqual(a.map((e) => e.type));
  });

  it("emits each snapshot once even when the backend reports the full list every poll", async () => {
    const machine = new JobStateMachine("job");
    const events = collect(machine.events());
    await Promise.resolve();
    machine.setProgress({ snapshots: [snapshot(1, 3)] });
    machine.setProgress({ snapshots: [snapshot(1, 3), snapshot(2, 2)] });
    machine.setProgress({ snapshots: [snapshot(1, 3), snapshot(2, 2)] });
    machine.setProgress({ snapshots: [snapshot(3, 1), snapshot(3, 1)] });
    machine.cancelled();
    const steps = (await events).flatMap((e) => (e.type === "snapshot" ? [e.snapshot.step] : []));
    expect(steps).toEqual([1, 2, 3]);
    expect(machine.progress.snapshots.map((s) => s.meanLoss)).toEqual([3, 2, 1]);
  });

  it("gives a late subscriber the current state and progress first", async () => {
    const machine = new JobStateMachine("job");
    machine.start();
    machine.setProgress({ completedSteps: 3, totalSteps: 10 });
    const iterator = machine.events()[Symbol.asyncIterator]();
    const first = await iterator.next();
    const second = await iterator.next();
    expect(first.value).toMatchObject({ type: "state", state: "running" });
    expect(second.value).toMatchObject({ type: "progress", progress: { completedSteps: 3 } });
    machine.fail(new Error("boom"));
    const rest: JobEvent[] = [];
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest.push(r.value);
    expect(rest.map((e) => e.type)).toEqual(["error", "state"]);
  });

  it("ends a subscription to a finished job after the final state", async () => {
    const machine = new JobStateMachine("job");
    machine.succeed(model);
    const events = await collect(machine.events());
    expect(events).toEqual([expect.objectContaining({ type: "state", state: "succeeded" })]);
  });

  it("settles wait() exactly once and ignores later transitions", async () => {
    const machine = new JobStateMachine("job");
    const waiting = machine.wait();
    machine.succeed(model);
    machine.fail(new Error("too late"));
    machine.cancelled();
    await expect(waiting).resolves.toBe(model);
    await expect(machine.wait()).resolves.toBe(model);
    expect(machine.state).toBe("succeeded");
  });

  it("rejects wait() with TuningFailedError carrying the cause", async () => {
    const machine = new JobStateMachine("job");
    machine.fail(new Error("disk full"));
    const error = await machine.wait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TuningFailedError);
    expect((error as TuningFailedError).message).toContain("disk full");
    expect((error as TuningFailedError).jobName).toBe("job");
  });

  it("rejects wait() with TuningCancelledError when the job is cancelled", async () => {
    const machine = new JobStateMachine("job");
    machine.cancelled();
    await expect(machine.wait()).rejects.toBeInstanceOf(TuningCancelledError);
  });

  it("stops waiting on abort without touching the job", async () => {
    const machine = new JobStateMachine("job");
    machine.start();
    const controller = new AbortController();
    const waiting = machine.wait({ signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    expect(machine.state).toBe("running");
    machine.succeed(model);
    await expect(machine.wait()).resolves.toBe(model);
  });

  it("times out waiting with TimeoutError", async () => {
    const machine = new JobStateMachine("job");
    await expect(machine.wait({ timeoutMs: 10 })).rejects.toBeInstanceOf(TimeoutError);
  });

  it("ends an event stream when its signal fires, leaving other streams alive", async () => {
    const machine = new JobStateMachine("job");
    const controller = new AbortController();
    const aborted = collect(machine.events({ signal: controller.signal }));
    const kept = collect(machine.events());
    await Promise.resolve();
    machine.start();
    await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const early = await aborted;
    machine.succeed(model);
    expect(early.at(-1)).toMatchObject({ type: "state", state: "running" });
    expect((await kept).at(-1)).toMatchObject({ type: "state", state: "succeeded" });
  });

  it("never moves backwards", () => {
    const machine = new JobStateMachine("job");
    machine.start();
    machine.cancelled();
    machine.start();
    machine.succeed(model);
    expect(machine.state).toBe("cancelled");
  });
});

describe("ManagedTuningJob", () => {
  it("exposes the machine through the TuningJob interface and cancels through the backend", async () => {
    const machine = new JobStateMachine("runs/x");
    let cancels = 0;
    const job = new ManagedTuningJob(machine, async () => {
      cancels++;
      machine.cancelled();
    });
    machine.start();
    expect(job.name).toBe("runs/x");
    expect(job.state()).toBe("running");
    await job.cancel();
    await job.cancel();
    expect(cancels).toBe(1);
    expect(job.state()).toBe("cancelled");
    await expect(job.wait()).rejects.toBeInstanceOf(TuningCancelledError);
  });
});

describe("JobStateMachine logs", () => {
  it("replays log lines emitted before a subscriber arrived", async () => {
    const machine = new JobStateMachine("job");
    machine.log("warning", "examples carry different instructions");
    machine.start();
    const iterator = machine.events()[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ type: "state", state: "running" });
    expect((await iterator.next()).value).toMatchObject({
      type: "log",
      level: "warning",
      message: "examples carry different instructions",
    });
    await iterator.return?.();
  });
});
