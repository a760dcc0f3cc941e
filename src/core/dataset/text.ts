/** Small, allocation-free string helpers for the validation hot path. */

/**
 * Counts Unicode code points: a surrogate pair (an astral-plane character such as "😀")
 * counts 1, a lone surrogate counts 1, everything else counts 1 per UTF-16 unit.
 */
export function countCodePoints(text: string): number {
  let count = text.length;
  const last = text.length - 1;
  for (let i = 0; i < last; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

/**
 * True when `text` has more than `limit` code points. Walks the string only when its
 * UTF-16 length exceeds the limit, since code points never outnumber UTF-16 units.
 */
export function exceedsCodePoints(text: string, limit: number): boolean {
  return text.length > limit && countCodePoints(text) > limit;
}

function isSpaceUnit(unit: number): boolean {
  return (
    unit === 0x20 ||
    (unit >= 0x09 && unit <= 0x0d) ||
    unit === 0xa0 ||
    unit === 0xfeff ||
    unit === 0x3000 ||
    unit === 0x1680 ||
    (unit >= 0x2000 && unit <= 0x200a) ||
    unit === 0x2028 ||
    unit === 0x2029 ||
    unit === 0x202f ||
    unit === 0x205f
  );
}

/** True for "" and for text made only of whitespace. Trims only when an end is whitespace. */
export function isBlank(text: string): boolean {
  if (text.length === 0) return true;
  if (!isSpaceUnit(text.charCodeAt(0)) && !isSpaceUnit(text.charCodeAt(text.length - 1))) {
    return false;
  }
  return text.trim().length === 0;
}

/** Names the JSON type of a value for messages: `number`, `null`, `array`, `object`, … */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
