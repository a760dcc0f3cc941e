/** The id of one `tune()` call, decided before its create is first sent. */
import { getRandomValues } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A fresh request id: 20 lowercase letters and digits (≥ 100 bits of randomness), valid as a
 * Vertex AI label value. `random` (tests) replaces the crypto source.
 */
export function newRequestId(random?: () => number): string {
  let out = "";
  if (random) {
    for (let i = 0; i < 20; i++) out += ALPHABET[Math.floor(random() * ALPHABET.length) % 36];
    return out;
  }
  for (const byte of getRandomValues(new Uint8Array(20))) out += ALPHABET[byte % 36];
  return out;
}
