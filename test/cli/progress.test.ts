import { describe, expect, it } from "vitest";
import {
  createProgressView,
  formatDuration,
  ProgressClock,
  renderBar,
} from "../../src/cli/progress.js";
import type { JobEvent, Progress } from "../../src/core/types.js";

const at = "2026-01-01T00:00:00.000Z";

function progress(completedSteps: number, extra: Partial<Progress> = {}): Progress {
  return {
    completedSteps,
    totalSteps: 100,
    epoch: 1,
    snapshots: [{ step: completedSteps, epoch: 1, meanLoss: 0.5, computeTime: at }],
    ...extra,
  };
}

function sink() {
  let text = "";
  return {
    write: (chunk: string) => {
      text += chunk;
      return true;
    },
    get text() {
      return text;
    },
  };
}

describe("progress rendering", () => {
  it("formats durations", () => {
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(65_000)).toBe("1:05");
    expect(formatDuration(3_726_000)).toBe("1:02:06");
  });

  it("estimates the time left from the observed step rate", () => {
    let now = 0;
    const clock = new ProgressClock(() => now);
    clock.observe(progress(10));
    expect(clock.etaMs(progress(10))).toBeUndefined();
    now = 10_000;
    clock.observe(progress(20));
    expect(clock.etaMs(progress(20))).toBe(80_000); // 10 steps per 10 s, 80 steps left
  });

  it("draws a bar with steps, percent, elapsed, ETA, loss and tokens/s within the width", () => {
    let now = 0;
    const clock = new ProgressClock(() => now);
    clock.observe(progress(0));
    now = 30_000;
    const p = progress(50, { completedPercent: 50, metrics: { tokensPerSecond: 1234.4 } });
    clock.observe(p);
    const line = renderBar("running", p, clock, 120);
    expect(line).toMatch(
      /^█+░+ 50% · step 50\/100 · epoch 1 · loss 0\.5000 · 1,234 tok\/s · 0:30 elapsed · ETA 0:30$/,
    );
    expect([...renderBar("running", p, clock, 40)].length).toBeLessThanOrEqual(39);
  });

  it("writes timestamped lines when not a terminal, at most one per interval", () => {
    let now = Date.parse("2026-05-01T12:00:00Z");
    const out = sink();
    const view = createProgressView(out, { tty: false, now: () => now, minLineIntervalMs: 1000 });
    const events: JobEvent[] = [
      { type: "state", state: "running", at },
      { type: "progress", progress: progress(10), at },
      { type: "progress", progress: progress(20), at }, // within the interval: held back
      { type: "log", level: "warning", message: "slow", at },
      { type: "log", level: "debug", message: "hidden", at },
    ];
    for (const event of events) view.update(event);
    now += 2000;
    view.update({ type: "progress", progress: progress(30), at });
    view.update({ type: "progress", progress: progress(100), at });
    view.finish();
    const lines = out.text.trimEnd().split("\n");
    expect(lines[0]).toBe("[2026-05-01T12:00:00Z] state: running");
    expect(lines[1]).toMatch(
      /^\[2026-05-01T12:00:00Z\] step 10\/100 \(10%\) · epoch 1 · loss 0\.5000 · elapsed 0:00$/,
    );
    expect(lines[2]).toBe("[2026-05-01T12:00:00Z] warning: slow");
    expect(lines[3]).toMatch(/step 30\/100/);
    expect(lines[4]).toMatch(/step 100\/100 \(100%\)/);
    expect(out.text).not.toContain("hidden");
    expect(out.text).not.toContain("step 20/100");
  });

  it("redraws one line in place on a terminal", () => {
    const out = sink();
    const view = createProgressView(out, { tty: true, columns: 100 });
    view.update({ type: "state", state: "running", at });
    view.update({ type: "progress", progress: progress(40), at });
    view.update({ type: "log", level: "info", message: "checkpoint saved", at });
    view.finish();
    expect(out.text).toContain("\r\x1b[2K");
    expect(out.text).toContain("checkpoint saved\n");
    expect(out.text).toMatch(/█+░+ 40% · step 40\/100/);
    expect(out.text.endsWith("\n")).toBe(true);
  });

  it("prints only problems when quiet (--json)", () => {
    const out = sink();
    const view = createProgressView(out, { tty: false, quiet: true });
    view.update({ type: "state", state: "running", at });
    view.update({ type: "progress", progress: progress(10), at });
    view.update({ type: "log", level: "warning", message: "careful", at });
    view.finish();
    expect(out.text).toMatch(/^\[.*\] warning: careful\n$/);
  });
});
