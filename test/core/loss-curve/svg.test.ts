import { DOMParser } from "@xmldom/xmldom";
import { describe, expect, it } from "vitest";
import { sparkline } from "../../../src/core/loss-curve/sparkline.js";
import { lossCurveSvg, niceTicks } from "../../../src/core/loss-curve/svg.js";
import type { TuningSnapshot } from "../../../src/core/types.js";

const snapshots: TuningSnapshot[] = Array.from({ length: 12 }, (_, i) => ({
  step: i + 1,
  epoch: Math.floor(i / 4) + 1,
  meanLoss: 3 / (i + 1),
  computeTime: "2026-01-01T00:00:00.000Z",
  ...(i % 4 === 3 ? { evalLoss: 3.2 / (i + 1) } : {}),
}));

function parse(svg: string) {
  const errors: string[] = [];
  const doc = new DOMParser({
    onError: (level, message) => {
      if (level !== "warning") errors.push(message);
    },
  }).parseFromString(svg, "image/svg+xml");
  expect(errors).toEqual([]);
  return doc;
}

describe("lossCurveSvg", () => {
  it("is well-formed SVG carrying every training point", () => {
    const doc = parse(lossCurveSvg(snapshots, { title: "increment <demo>" }));
    expect(doc.documentElement?.nodeName).toBe("svg");
    const circles = Array.from(doc.getElementsByTagName("circle"));
    const train = circles.slice(0, snapshots.length);
    expect(train.map((c) => Number(c.getAttribute("data-step")))).toEqual(
      snapshots.map((s) => s.step),
    );
    expect(train.map((c) => Number(c.getAttribute("data-loss")))).toEqual(
      snapshots.map((s) => s.meanLoss),
    );
    expect(circles).toHaveLength(snapshots.length + 3); // plus the three validation points
  });

  it("draws lower losses higher up the chart, and marks epoch boundaries", () => {
    const doc = parse(lossCurveSvg(snapshots));
    const ys = Array.from(doc.getElementsByTagName("circle"))
      .slice(0, snapshots.length)
      .map((c) => Number(c.getAttribute("cy")));
    for (let i = 1; i < ys.length; i++) expect(ys[i]).toBeGreaterThan(ys[i - 1] as number);
    const boundaries = Array.from(doc.getElementsByTagName("line")).filter((l) =>
      l.getAttribute("data-epoch"),
    );
    expect(boundaries.map((l) => l.getAttribute("data-epoch"))).toEqual(["2", "3"]);
  });

  it("labels axes, escapes the title and includes the advice", () => {
    const svg = lossCurveSvg(snapshots, { title: "a <b> & c" });
    expect(svg).toContain("a &#60;b&#62; &#38; c");
    expect(svg).toContain(">step<");
    expect(svg).toContain(">mean loss<");
    expect(svg).toContain("validation loss");
  });

  it("renders an empty chart without points", () => {
    const doc = parse(lossCurveSvg([]));
    expect(doc.getElementsByTagName("circle")).toHaveLength(0);
  });
});

describe("niceTicks", () => {
  it("covers the range with round steps", () => {
    expect(niceTicks(0, 3.2, 6, false)).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
    expect(niceTicks(1, 12, 8, true)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(niceTicks(1, 40, 8, true)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40]);
    expect(niceTicks(5, 5, 4, true).length).toBeGreaterThan(1);
  });
});

describe("sparkline", () => {
  it("maps the highest value to a full block and the lowest to the smallest", () => {
    expect(sparkline([3, 2, 1, 0])).toBe("█▆▃▁");
    expect(sparkline([1, 1, 1])).toBe("▁▁▁");
    expect(sparkline([])).toBe("");
  });

  it("resamples long series to the requested width", () => {
    expect([
      ...sparkline(
        Array.from({ length: 1000 }, (_, i) => 1000 - i),
        20,
      ),
    ]).toHaveLength(20);
  });
});
