/**
 * A deterministic corpus of damaged model files for `loadModel`: copies of a tiny fixture
 * model directory whose `model.safetensors` or `config.json` is mutated, and copies of a
 * tiny Gemma 3 GGUF with a damaged header, metadata or tensor table. Mutations are
 * structured (lying lengths, counts, offsets, shapes, dtypes, values) and blind (byte flips,
 * truncation). The same seed always gives the same files.
 */
import { link, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { rng } from "./datasets-corpus.js";

/** One damaged model and what was done to it. */
export interface ModelCase {
  /** A model directory or a .gguf file. */
  path: string;
  format: "safetensors" | "config" | "gguf";
  mutation: string;
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)] as T;
const int = (random: Random, below: number) => Math.floor(random() * below);

const WEIRD: readonly unknown[] = [
  -1,
  0,
  1.5,
  2 ** 40,
  Number.MAX_SAFE_INTEGER,
  "12",
  null,
  true,
  [],
  {},
  [1, 2, 3],
  -1e308,
];

function withLength(header: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length));
  json.copy(out, 8);
  return out;
}

/** Safetensors mutations: `[header JSON, data region]` → file bytes. */
function mutateSafetensors(
  random: Random,
  header: Record<string, Record<string, unknown>>,
  data: Buffer,
): [string, Buffer] {
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const name = pick(random, names);
  const h = structuredClone(header) as Record<string, Record<string, unknown>>;
  const entry = h[name] as Record<string, unknown>;
  const kind = int(random, 12);
  let head: Buffer;
  let label: string;
  switch (kind) {
    case 0:
      entry.dtype = pick(random, ["F32", "BF16", "F16", "I8", "F64", "Q8_0", "", "f32", "BOOL", 7]);
      [head, label] = [withLength(h), "dtype"];
      break;
    case 1: {
      const offsets = entry.data_offsets as unknown[];
      offsets[int(random, 2)] = pick(random, WEIRD);
      [head, label] = [withLength(h), "data_offsets value"];
      break;
    }
    case 2: {
      const shape = entry.shape as unknown[];
      if (shape.length > 0) shape[int(random, shape.length)] = pick(random, WEIRD);
      else entry.shape = pick(random, WEIRD);
      [head, label] = [withLength(h), "shape value"];
      break;
    }
    case 3:
      delete entry[pick(random, ["dtype", "shape", "data_offsets"])];
      [head, label] = [withLength(h), "missing field"];
      break;
    case 4:
      h[name] = pick(random, WEIRD) as Record<string, unknown>;
      [head, label] = [withLength(h), "entry replaced"];
      break;
    case 5: {
      const shift = (int(random, 64) - 32) * 4;
      const offsets = entry.data_offsets as number[];
      entry.data_offsets = offsets.map((o) => o + shift);
      [head, label] = [withLength(h), "tensor shifted"];
      break;
    }
    case 6: {
      head = withLength(h);
      const lie = pick(random, [
        0n,
        1n,
        7n,
        BigInt(head.length),
        2n ** 64n - 1n,
        2n ** 33n,
        BigInt(int(random, 2 ** 31)),
      ]);
      head.writeBigUInt64LE(lie);
      label = "length prefix lies";
      break;
    }
    case 7: {
      head = withLength(h);
      for (let i = 0; i <= int(random, 8); i++)
        head[8 + int(random, head.length - 8)] = int(random, 256);
      label = "header bytes flipped";
      break;
    }
    case 8:
      head = withLength(h).subarray(0, 8 + int(random, withLength(h).length - 8));
      return ["header cut short", head];
    case 9: {
      // Non-finite and huge values in the weights themselves: loads, must not crash generation.
      const damaged = Buffer.from(data);
      for (let i = 0; i < 16; i++) {
        damaged.writeFloatLE(
          pick(random, [Number.NaN, Number.POSITIVE_INFINITY, 3e38]),
          4 * int(random, damaged.length / 4),
        );
      }
      return ["NaN/Inf in the weights", Buffer.concat([withLength(h), damaged])];
    }
    case 10:
      h.__metadata__ = pick(random, WEIRD) as Record<string, unknown>;
      [head, label] = [withLength(h), "metadata"];
      break;
    default:
      h[`model.extra.${int(random, 10)}.weight`] = {
        dtype: "F32",
        shape: [2 ** 31, 2 ** 31],
        data_offsets: [0, 8],
      };
      [head, label] = [withLength(h), "huge extra tensor"];
  }
  let bytes = Buffer.concat([head, data]);
  if (random() < 0.25) {
    bytes = bytes.subarray(0, int(random, bytes.length));
    label += " + truncated";
  }
  return [label, bytes];
}

/** config.json mutations (values, deletions, Python's NaN tokens, byte damage). */
function mutateConfig(random: Random, original: string): [string, string] {
  const config = JSON.parse(original) as Record<string, unknown>;
  const keys = Object.keys(config);
  switch (int(random, 5)) {
    case 0: {
      const bytes = Buffer.from(original);
      for (let i = 0; i <= int(random, 4); i++)
        bytes[int(random, bytes.length)] = pick(random, [...Buffer.from('{}[]",:0-9e ')]);
      return ["bytes damaged", bytes.toString("latin1")];
    }
    case 1: {
      const key = pick(random, [
        "rms_norm_eps",
        "rope_theta",
        "num_hidden_layers",
        "max_position_embeddings",
        "hidden_size",
      ]);
      const token = pick(random, ["NaN", "Infinity", "-Infinity"]);
      return [
        `${key} = ${token}`,
        JSON.stringify({ ...config, [key]: "__T__" }).replace('"__T__"', token),
      ];
    }
    case 2: {
      const key = pick(random, keys);
      delete config[key];
      return [`${key} removed`, JSON.stringify(config)];
    }
    default: {
      const key = pick(random, keys);
      config[key] = pick(random, [
        ...WEIRD,
        0,
        -5,
        { rope_type: "llama3", factor: 0 },
        { rope_type: "linear" },
      ]);
      return [`${key} = ${JSON.stringify(config[key])}`, JSON.stringify(config)];
    }
  }
}

/** GGUF mutations: counts, lengths, value types, tensor info and blind damage. */
function mutateGguf(random: Random, gguf: Buffer): [string, Buffer] {
  const bytes = Buffer.from(gguf);
  const region = Math.min(bytes.length, 64 * 1024); // header, metadata and tensor table
  switch (int(random, 7)) {
    case 0:
      bytes.writeBigUInt64LE(pick(random, [0n, 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n]), 8);
      return ["tensor count lies", bytes];
    case 1:
      bytes.writeBigUInt64LE(pick(random, [0n, 3n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n]), 16);
      return ["metadata count lies", bytes];
    case 2:
      bytes.writeUInt32LE(pick(random, [0, 1, 2, 4, 99]), 4);
      return ["version", bytes];
    case 3: {
      const at = 24 + 8 * int(random, (region - 32) / 8);
      bytes.writeBigUInt64LE(
        pick(random, [0n, 2n ** 32n, 2n ** 62n, 2n ** 64n - 1n, BigInt(int(random, 1 << 20))]),
        at,
      );
      return ["a u64 overwritten (length, count or offset)", bytes];
    }
    case 4: {
      const at = 24 + 4 * int(random, (region - 28) / 4);
      bytes.writeUInt32LE(pick(random, [0xffffffff, 0, 13, 30, 1 << 24]), at);
      return ["a u32 overwritten (type, dims)", bytes];
    }
    case 5:
      for (let i = 0; i <= int(random, 16); i++) bytes[int(random, region)] = int(random, 256);
      return ["bytes flipped", bytes];
    default:
      return ["truncated", bytes.subarray(0, int(random, bytes.length))];
  }
}

/** Writes `count` damaged models under `dir`, split over the three formats. */
export async function writeModelCorpus(
  dir: string,
  fixtures: string,
  count: number,
  seed: number,
): Promise<ModelCase[]> {
  const random = rng(seed);
  const model = join(fixtures, "models", "qwen2-bias");
  const st = await readFile(join(model, "model.safetensors"));
  const headerLength = Number(st.readBigUInt64LE(0));
  const header = JSON.parse(st.subarray(8, 8 + headerLength).toString("utf8")) as Record<
    string,
    Record<string, unknown>
  >;
  const data = st.subarray(8 + headerLength);
  const config = await readFile(join(model, "config.json"), "utf8");
  const gguf = await readFile(join(fixtures, "gguf", "tiny-gemma3.gguf"));
  const cases: ModelCase[] = [];
  for (let i = 0; i < count; i++) {
    const format = (["safetensors", "config", "gguf"] as const)[i % 3] as ModelCase["format"];
    const name = `case-${String(i).padStart(4, "0")}`;
    if (format === "gguf") {
      const [mutation, bytes] = mutateGguf(random, gguf);
      const path = join(dir, `${name}.gguf`);
      await writeFile(path, bytes);
      cases.push({ path, format, mutation });
      continue;
    }
    const path = join(dir, name);
    await mkdir(path);
    for (const file of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) {
      await link(join(model, file), join(path, file));
    }
    if (format === "safetensors") {
      const [mutation, bytes] = mutateSafetensors(random, header, data);
      await writeFile(join(path, "model.safetensors"), bytes);
      await writeFile(join(path, "config.json"), config);
      cases.push({ path, format, mutation });
    } else {
      const [mutation, text] = mutateConfig(random, config);
      await link(join(model, "model.safetensors"), join(path, "model.safetensors"));
      await writeFile(join(path, "config.json"), text);
      cases.push({ path, format, mutation });
    }
  }
  return cases;
}
