import { Dataset } from "../../core/dataset/index.js";
import { formatDatasetIssue, InvalidDatasetError, InvalidOptionError } from "../../core/errors.js";
import type { Output } from "../output.js";

export interface ValidateFlags {
  for?: string;
  input?: string;
  output?: string;
  instruction?: string;
  encoding?: string;
}

/**
 * `tunekit validate <data> [--for gemini|local]`: loads the file (every record is
 * checked), then applies the backend's limits. Prints stats and warnings; exits non-zero
 * listing every bad row with its position.
 */
export async function validateCommand(
  path: string,
  flags: ValidateFlags,
  out: Output,
): Promise<number> {
  const target = flags.for ?? "gemini";
  if (target !== "gemini" && target !== "local") {
    throw new InvalidOptionError(
      "--for",
      `Unknown target "${target}" for --for (use gemini or local)`,
    );
  }
  if ((flags.input === undefined) !== (flags.output === undefined)) {
    throw new InvalidOptionError(
      "--input-column",
      "Give both --input-column and --output-column, or neither",
    );
  }
  const columns =
    flags.input !== undefined && flags.output !== undefined
      ? {
          input: flags.input,
          output: flags.output,
          ...(flags.instruction ? { instruction: flags.instruction } : {}),
        }
      : undefined;
  const dataset = await Dataset.load(path, {
    ...(columns ? { columns } : {}),
    ...(flags.encoding ? { encoding: flags.encoding } : {}),
  });
  const stats = dataset.stats();
  // The local profile is token-based and needs the model's tokenizer; without a model,
  // loading (every record well-formed, non-empty output) is the local check.
  const result = target === "gemini" ? dataset.validate("gemini") : undefined;
  if (result && !result.valid) {
    throw new InvalidDatasetError(result.errors, { source: path, truncated: result.truncated });
  }
  const warnings = result?.warnings ?? [];
  out.result(
    { path, examples: dataset.size, target, valid: true, issues: result?.issues ?? [], stats },
    () => {
      const lines = [`${path}: ${dataset.size} examples`];
      lines.push(
        `  input length (code points)   p50 ${stats.input.p50}  p90 ${stats.input.p90}  max ${stats.input.max}`,
        `  output length (code points)  p50 ${stats.output.p50}  p90 ${stats.output.p90}  max ${stats.output.max}`,
      );
      if (stats.exactDuplicates > 0)
        lines.push(`  ${stats.exactDuplicates} exact duplicate examples`);
      if (stats.conflictingInputs > 0)
        lines.push(`  ${stats.conflictingInputs} inputs appear with different outputs`);
      for (const warning of warnings) lines.push(`warning: ${formatDatasetIssue(warning)}`);
      lines.push(`ok: valid for ${target}`);
      return lines.join("\n");
    },
  );
  return 0;
}
