/**
 * TensorBoard event files: TFRecord framing with masked CRC-32C and hand-encoded Event/Summary
 * protobufs, read back by a reader that checks every CRC — and, where Python's `tensorboard`
 * package is installed (dev machines), by TensorBoard's own reader (skipped visibly elsewhere).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InvalidOptionError } from "../../../src/core/errors.js";
import {
  crc32c,
  frameRecord,
  maskedCrc32c,
  readRecords,
  readTensorBoardEvents,
  TensorBoardWriter,
} from "../../../src/core/tensorboard/index.js";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("CRC-32C", () => {
  it("matches the published check values", () => {
    expect(crc32c(bytes("123456789"))).toBe(0xe3069283); // RFC 3720 check value
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 zero bytes
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    // TensorFlow's mask: rotate right 15, add 0xa282ead8.
    const crc = crc32c(bytes("abc"));
    expect(maskedCrc32c(bytes("abc"))).toBe(
      ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0,
    );
  });
});

describe("TFRecord framing", () => {
  it("round-trips records and refuses a flipped bit naming its offset", () => {
    const file = new Uint8Array([...frameRecord(bytes("first")), ...frameRecord(bytes("second!"))]);
    expect(readRecords(file).map((r) => new TextDecoder().decode(r))).toEqual(["first", "second!"]);
    const corrupt = file.slice();
    corrupt[12 + 5 + 4 + 14] = (corrupt[12 + 5 + 4 + 14] as number) ^ 1; // a data byte of record 2
    expect(() => readRecords(corrupt, "x.tfevents")).toThrow(InvalidOptionError);
    expect(() => readRecords(corrupt, "x.tfevents")).toThrow(/data CRC of the record at byte 21/);
    // A record still being written at the end is not an error: the reader stops before it.
    expect(readRecords(file.subarray(0, file.length - 3))).toHaveLength(1);
  });
});

describe("TensorBoardWriter", () => {
  it("writes a file version event, then scalar events flushed as they come", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "tunekit-tb-")), "run");
    let clock = 1_700_000_000.25;
    const writer = new TensorBoardWriter(dir, { now: () => clock });
    expect(readdirSync(dir)).toEqual([
      expect.stringMatching(/^events\.out\.tfevents\.1700000000\./),
    ]);
    writer.scalars(1, { "train/loss": 2.5, "train/learning_rate": 1e-4, skipped: Number.NaN });
    // Readable before close: each event goes straight to the file.
    expect(readTensorBoardEvents(writer.path)).toHaveLength(2);
    clock += 1;
    writer.scalars(2, { "train/loss": 1.25, "eval/loss": 1.5, none: undefined });
    writer.scalars(3, {}); // nothing to write
    writer.close();
    writer.close();
    const events = readTensorBoardEvents(writer.path);
    expect(events).toHaveLength(3);
    expect(events[0]).toEqual({
      wallTime: 1_700_000_000.25,
      step: 0,
      fileVersion: "brain.Event:2",
      scalars: [],
    });
    expect(events[1]?.step).toBe(1);
    expect(events[1]?.scalars.map((s) => s.tag)).toEqual(["train/loss", "train/learning_rate"]);
    expect(events[1]?.scalars[1]?.value).toBeCloseTo(1e-4, 10); // float32
    expect(events[2]).toEqual({
      wallTime: 1_700_000_001.25,
      step: 2,
      scalars: [
        { tag: "train/loss", value: 1.25 },
        { tag: "eval/loss", value: 1.5 },
      ],
    });
    expect(() => writer.scalars(4, { a: 1 })).toThrow(/closed/);
  });

  it("a reader of the file refuses a corrupted event", () => {
    const dir = mkdtempSync(join(tmpdir(), "tunekit-tb-"));
    const writer = new TensorBoardWriter(dir);
    writer.scalars(1, { loss: 1 });
    writer.close();
    const data = readFileSync(writer.path);
    data[data.length - 6] = (data[data.length - 6] as number) ^ 0xff;
    writeFileSync(writer.path, data);
    expect(() => readTensorBoardEvents(writer.path)).toThrow(/CRC/);
  });
});

/** Why TensorBoard's Python reader cannot run here, or undefined when it can. */
function pythonMissing(): string | undefined {
  try {
    execFileSync(process.env.PYTHON ?? "python3", ["-c", "import tensorboard"], {
      stdio: "ignore",
      timeout: 60_000,
    });
    return undefined;
  } catch {
    return "python3 with the tensorboard package is not installed (pip install tensorboard)";
  }
}

const reason = pythonMissing();

describe.skipIf(reason !== undefined)(
  `TensorBoard's own reader${reason ? ` — skipped: ${reason}` : ""}`,
  () => {
    it("loads the scalars through tensorboard's EventAccumulator", () => {
      const dir = mkdtempSync(join(tmpdir(), "tunekit-tb-py-"));
      const writer = new TensorBoardWriter(dir);
      for (let step = 1; step <= 5; step++) {
        writer.scalars(step, {
          "train/loss": 3 / step,
          ...(step % 2 ? {} : { "eval/loss": 2 / step }),
        });
      }
      writer.close();
      const script = [
        "import json, sys",
        "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator",
        "acc = EventAccumulator(sys.argv[1]); acc.Reload()",
        "tags = acc.Tags()['scalars']",
        "print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in sorted(tags)}))",
      ].join("\n");
      const out = execFileSync(process.env.PYTHON ?? "python3", ["-c", script, dir], {
        encoding: "utf8",
        timeout: 120_000,
      });
      const scalars = JSON.parse(out.trim().split("\n").at(-1) as string) as Record<
        string,
        [number, number][]
      >;
      expect(Object.keys(scalars)).toEqual(["eval/loss", "train/loss"]);
      expect(scalars["train/loss"]?.map(([s]) => s)).toEqual([1, 2, 3, 4, 5]);
      expect(scalars["train/loss"]?.[2]?.[1]).toBeCloseTo(1, 6);
      expect(scalars["eval/loss"]).toEqual([
        [2, 1],
        [4, 0.5],
      ]);
    });
  },
);
