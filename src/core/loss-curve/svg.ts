import type { TuningSnapshot } from "../types.js";
import { adviseEpochs } from "./analyze.js";

/** Options of {@link lossCurveSvg}. */
export interface LossCurveSvgOptions {
  title?: string;
  width?: number;
  height?: number;
  /** Adds the plateau advice under the chart (default true). */
  advice?: boolean;
}

const MARGIN = { top: 48, right: 24, bottom: 64, left: 72 };

/**
 * Renders mean training loss against step as a standalone SVG document: readable axes
 * with round ticks, dashed epoch boundaries, validation loss as a second series when
 * present, and the plateau advice as a caption. No browser or canvas needed.
 *
 * Every point also appears as a `<circle data-step data-loss>` so tools (and tests) can
 * read the data back out of the file.
 *
 * @example
 * ```ts
 * await writeFile("loss.svg", lossCurveSvg(job.progress().snapshots, { title: "increment" }));
 * ```
 */
export function lossCurveSvg(
  snapshots: readonly TuningSnapshot[],
  options: LossCurveSvgOptions = {},
): string {
  const width = options.width ?? 760;
  const height = options.height ?? 420;
  const title = options.title ?? "Training loss";
  const train = [...snapshots]
    .filter((s) => Number.isFinite(s.meanLoss))
    .sort((a, b) => a.step - b.step);
  const evals = train.filter((s) => s.evalLoss !== undefined && Number.isFinite(s.evalLoss));

  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600">${escapeXml(title)}</text>`,
  );

  if (train.length === 0) {
    parts.push(
      `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666">No loss values yet</text>`,
      "</svg>",
    );
    return parts.join("\n");
  }

  const steps = train.map((s) => s.step);
  const losses = [...train.map((s) => s.meanLoss), ...evals.map((s) => s.evalLoss as number)];
  const xTicks = niceTicks(Math.min(...steps), Math.max(...steps), 8, true);
  const yTicks = niceTicks(Math.min(0, ...losses), Math.max(...losses), 6, false);
  const [x0, x1] = [xTicks[0] as number, xTicks.at(-1) as number];
  const [y0, y1] = [yTicks[0] as number, yTicks.at(-1) as number];
  const sx = (step: number) =>
    MARGIN.left + (x1 === x0 ? plotW / 2 : ((step - x0) / (x1 - x0)) * plotW);
  const sy = (loss: number) =>
    MARGIN.top + plotH - (y1 === y0 ? plotH / 2 : ((loss - y0) / (y1 - y0)) * plotH);

  // Grid and axes.
  parts.push(`<g class="grid" stroke="#e5e7eb" stroke-width="1">`);
  for (const t of yTicks)
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${fmt(sy(t))}" y2="${fmt(sy(t))}"/>`,
    );
  parts.push("</g>");
  parts.push(`<g class="axes" stroke="#374151" stroke-width="1">`);
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}"/>`,
  );
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}"/>`,
  );
  parts.push("</g>");
  parts.push(`<g class="x-ticks" fill="#374151" text-anchor="middle">`);
  for (const t of xTicks)
    parts.push(`<text x="${fmt(sx(t))}" y="${MARGIN.top + plotH + 18}">${label(t)}</text>`);
  parts.push("</g>");
  parts.push(`<g class="y-ticks" fill="#374151" text-anchor="end">`);
  for (const t of yTicks)
    parts.push(`<text x="${MARGIN.left - 8}" y="${fmt(sy(t) + 4)}">${label(t)}</text>`);
  parts.push("</g>");
  parts.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${height - 28}" text-anchor="middle" fill="#111827">step</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#111827">mean loss</text>`,
  );

  // Epoch boundaries: a dashed line before the first step of each epoch after the first.
  parts.push(`<g class="epochs" stroke="#9ca3af" stroke-dasharray="4 4" fill="#6b7280">`);
  for (let i = 1; i < train.length; i++) {
    const prev = train[i - 1] as TuningSnapshot;
    const cur = train[i] as TuningSnapshot;
    if (cur.epoch !== prev.epoch) {
      const x = fmt((sx(prev.step) + sx(cur.step)) / 2);
      parts.push(
        `<line data-epoch="${cur.epoch}" x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}"/>`,
        `<text x="${x}" y="${MARGIN.top - 6}" text-anchor="middle" stroke="none">epoch ${cur.epoch}</text>`,
      );
    }
  }
  parts.push("</g>");

  parts.push(
    series(
      "train",
      "#2563eb",
      train.map((s) => [s.step, s.meanLoss]),
      sx,
      sy,
      false,
    ),
  );
  if (evals.length > 0) {
    parts.push(
      series(
        "validation",
        "#dc2626",
        evals.map((s) => [s.step, s.evalLoss as number]),
        sx,
        sy,
        true,
      ),
    );
  }

  // Legend.
  const lx = MARGIN.left + plotW - 150;
  parts.push(`<g class="legend" font-size="12">`);
  parts.push(
    `<line x1="${lx}" x2="${lx + 24}" y1="${MARGIN.top + 12}" y2="${MARGIN.top + 12}" stroke="#2563eb" stroke-width="2"/>`,
  );
  parts.push(`<text x="${lx + 30}" y="${MARGIN.top + 16}">training loss</text>`);
  if (evals.length > 0) {
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${MARGIN.top + 30}" y2="${MARGIN.top + 30}" stroke="#dc2626" stroke-width="2" stroke-dasharray="6 3"/>`,
    );
    parts.push(`<text x="${lx + 30}" y="${MARGIN.top + 34}">validation loss</text>`);
  }
  parts.push("</g>");

  if (options.advice ?? true) {
    const advice = adviseEpochs(train);
    if (advice.kind !== "insufficient-data") {
      parts.push(
        `<text class="advice" x="${MARGIN.left}" y="${height - 8}" fill="#374151">${escapeXml(advice.message)}</text>`,
      );
    }
  }
  parts.push("</svg>");
  return parts.join("\n");
}

function series(
  name: string,
  color: string,
  points: [number, number][],
  sx: (x: number) => number,
  sy: (y: number) => number,
  dashed: boolean,
): string {
  const coords = points.map(([x, y]) => `${fmt(sx(x))},${fmt(sy(y))}`).join(" ");
  const dash = dashed ? ` stroke-dasharray="6 3"` : "";
  const radius = points.length > 200 ? 1 : 2.5;
  const dots = points
    .map(
      ([x, y]) =>
        `<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="${radius}" data-step="${x}" data-loss="${y}"/>`,
    )
    .join("");
  return `<g class="series-${name}"><polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${coords}"/><g fill="${color}">${dots}</g></g>`;
}

/** Round tick values covering [min, max]: steps of 1, 2 or 5 × 10^k. */
export function niceTicks(min: number, max: number, count: number, integer: boolean): number[] {
  if (!(max > min)) {
    const pad = integer ? 1 : Math.abs(min) * 0.1 || 1;
    return niceTicks(min - (integer ? 0 : pad), max + pad, count, integer);
  }
  const raw = (max - min) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  let step = (residual >= 7.07 ? 10 : residual >= 3.16 ? 5 : residual >= 1.41 ? 2 : 1) * magnitude;
  if (integer) step = Math.max(1, Math.round(step));
  const start = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let v = start; v < max + step * 0.5; v += step) ticks.push(Number(v.toPrecision(12)));
  if ((ticks.at(-1) as number) < max)
    ticks.push(Number(((ticks.at(-1) as number) + step).toPrecision(12)));
  return ticks;
}

function label(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(3)));
}

function fmt(value: number): string {
  return String(Math.round(value * 100) / 100);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
