import { InvalidOptionError } from "../core/errors.js";

/** Bounds of a numeric flag. */
export interface NumberRule {
  integer?: boolean;
  min?: number;
  max?: number;
}

/** Parses a numeric flag value, or throws `InvalidOptionError` naming the flag (exit 3). */
export function parseNumber(flag: string, value: string, rule: NumberRule = {}): number {
  const n = value.trim() === "" ? Number.NaN : Number(value);
  const kind = rule.integer ? "a whole number" : "a number";
  const bounds = [
    rule.min === undefined ? undefined : `≥ ${rule.min}`,
    rule.max === undefined ? undefined : `≤ ${rule.max}`,
  ]
    .filter(Boolean)
    .join(" and ");
  const ok =
    Number.isFinite(n) &&
    (!rule.integer || Number.isInteger(n)) &&
    (rule.min === undefined || n >= rule.min) &&
    (rule.max === undefined || n <= rule.max);
  if (!ok) {
    throw new InvalidOptionError(
      flag,
      `${flag} must be ${kind}${bounds ? ` ${bounds}` : ""}, got "${value}"`,
    );
  }
  return n;
}

/** `parseNumber` for an optional flag. */
export function optionalNumber(
  flag: string,
  value: string | undefined,
  rule: NumberRule = {},
): number | undefined {
  return value === undefined ? undefined : parseNumber(flag, value, rule);
}
