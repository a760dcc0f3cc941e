import { text as readAll } from "node:stream/consumers";
import { InvalidOptionError } from "../../core/errors.js";
import type { GenerateOptions, TunedModelInfo } from "../../core/types.js";
import { type BackendName, backendForName, createBackend, type RemoteFlags } from "../backends.js";
import { EXIT } from "../exit-codes.js";
import { optionalNumber } from "../flags.js";
import { adviceJson, curveSummary } from "../follow.js";
import type { Output } from "../output.js";
import { canPrompt, confirm } from "../prompt.js";

export interface ListFlags extends RemoteFlags {
  backend?: string;
  pageSize?: string;
  filter?: string;
}

/** `tunekit list`: every tuned model, across all pages. */
export async function listCommand(flags: ListFlags, out: Output): Promise<number> {
  const pageSize = optionalNumber("--page-size", flags.pageSize, {
    integer: true,
    min: 1,
    max: 1000,
  });
  const backend = await createBackend(flags.backend ?? "gemini", flags, out.io.env);
  const models: TunedModelInfo[] = [];
  const options = {
    ...(pageSize === undefined ? {} : { pageSize }),
    ...(flags.filter ? { filter: flags.filter } : {}),
  };
  for await (const model of backend.tuner.listModels(options)) models.push(model);
  out.result({ models }, () => (models.length === 0 ? "no tuned models" : table(models)));
  return EXIT.ok;
}

function table(models: readonly TunedModelInfo[]): string {
  const rows = [
    ["NAME", "STATE", "BASE MODEL", "DISPLAY NAME", "CREATED"],
    ...models.map((m) => [m.name, m.state, m.baseModel, m.displayName ?? "", m.createTime ?? ""]),
  ];
  const widths =
    rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** `tunekit get <name>`: a tuned model's details, loss sparkline and advice. */
export async function getCommand(name: string, flags: RemoteFlags, out: Output): Promise<number> {
  const backend = await createBackend(backendForName(name), flags, out.io.env);
  const info = (await backend.tuner.getModel(name)).info();
  const { lines, advice } = curveSummary({ completedSteps: 0, snapshots: info.snapshots ?? [] });
  out.result({ ...info, advice: adviceJson(advice) }, () => {
    const hp = Object.entries(info.hyperparameters ?? {}).map(([k, v]) => `${k} ${v}`);
    const sampling = (["temperature", "topP", "topK"] as const)
      .filter((k) => info[k] !== undefined)
      .map((k) => `${k} ${info[k]}`);
    const rows: [string, string | undefined][] = [
      ["name", info.name],
      ["display name", info.displayName],
      ["description", info.description],
      ["state", info.state],
      ["base model", info.baseModel],
      ["created", info.createTime],
      ["updated", info.updateTime],
      ["hyperparameters", hp.join(", ") || undefined],
      ["sampling", sampling.join(", ") || undefined],
      ["instruction", info.template?.instruction],
    ];
    return [
      ...rows
        .filter(([, v]) => v !== undefined && v !== "")
        .map(([k, v]) => `${`${k}:`.padEnd(17)}${v}`),
      ...lines,
    ].join("\n");
  });
  return EXIT.ok;
}

export interface DeleteFlags extends RemoteFlags {
  yes?: boolean;
}

/** `tunekit delete <name>`: deletes a tuned model after a y/N question (or with `--yes`). */
export async function deleteCommand(
  name: string,
  flags: DeleteFlags,
  out: Output,
): Promise<number> {
  const backend = await createBackend(backendForName(name), flags, out.io.env);
  if (!flags.yes) {
    if (!canPrompt(out.io) || out.json) {
      throw new InvalidOptionError(
        "--yes",
        `Deleting ${name} cannot be undone: pass --yes to delete without a question`,
      );
    }
    if (!(await confirm(`Delete ${name}? This cannot be undone. [y/N] `, out.io))) {
      out.note("not deleted");
      return EXIT.ok;
    }
  }
  await backend.tuner.deleteModel(name);
  out.result({ name, deleted: true }, () => `deleted ${name}`);
  return EXIT.ok;
}

export interface GenerateFlags extends RemoteFlags {
  temperature?: string;
  topP?: string;
  topK?: string;
  maxOutputTokens?: string;
  stream?: boolean;
}

/** `tunekit generate <model> <input>`: one reply from a tuned model (`-` reads the input from stdin). */
export async function generateCommand(
  name: string,
  input: string,
  flags: GenerateFlags,
  out: Output,
): Promise<number> {
  const options = generateOptions(flags, out.io.interrupt);
  const backend: BackendName = backendForName(name);
  const model = await (await createBackend(backend, flags, out.io.env)).tuner.getModel(name);
  const prompt = input === "-" ? await readStdin(out) : input;
  if (flags.stream && model.generateStream && !out.json) {
    for await (const chunk of model.generateStream(prompt, options)) out.io.stdout.write(chunk);
    out.io.stdout.write("\n");
    return EXIT.ok;
  }
  let output = "";
  if (flags.stream && model.generateStream) {
    for await (const chunk of model.generateStream(prompt, options)) output += chunk;
  } else {
    output = await model.generate(prompt, options);
  }
  out.result({ model: model.name, input: prompt, output }, () => output);
  return EXIT.ok;
}

function generateOptions(flags: GenerateFlags, signal: AbortSignal | undefined): GenerateOptions {
  const temperature = optionalNumber("--temperature", flags.temperature, { min: 0, max: 2 });
  const topP = optionalNumber("--top-p", flags.topP, { min: 0, max: 1 });
  const topK = optionalNumber("--top-k", flags.topK, { integer: true, min: 1 });
  const maxOutputTokens = optionalNumber("--max-output-tokens", flags.maxOutputTokens, {
    integer: true,
    min: 1,
  });
  return {
    ...(temperature === undefined ? {} : { temperature }),
    ...(topP === undefined ? {} : { topP }),
    ...(topK === undefined ? {} : { topK }),
    ...(maxOutputTokens === undefined ? {} : { maxOutputTokens }),
    ...(signal ? { signal } : {}),
  };
}

async function readStdin(out: Output): Promise<string> {
  const stdin = out.io.stdin;
  if (!stdin) throw new InvalidOptionError("input", 'Input "-" means stdin, but there is none');
  return (await readAll(stdin)).replace(/\n$/, "");
}
