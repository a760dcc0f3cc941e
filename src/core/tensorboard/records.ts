/**
 * TFRecord framing: each record is `uint64 length`, `uint32 masked_crc32c(length)`, the data,
 * `uint32 masked_crc32c(data)`, all little-endian.
 */
import { InvalidOptionError } from "../errors.js";
import { maskedCrc32c } from "./crc32c.js";

/** Frames `data` as one TFRecord. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/**
 * The records of a TFRecord file, each CRC checked. A record cut short at the very end (a file
 * being written) ends the list; anything else malformed throws.
 *
 * @throws InvalidOptionError naming the byte offset of a record whose CRC does not match.
 */
export function readRecords(bytes: Uint8Array, source = "TFRecord data"): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let offset = 0;
  while (offset + 12 <= bytes.length) {
    const lengthBytes = bytes.subarray(offset, offset + 8);
    if (view.getUint32(offset + 8, true) !== maskedCrc32c(lengthBytes)) {
      throw new InvalidOptionError(
        "events",
        `${source}: the length CRC of the record at byte ${offset} does not match`,
      );
    }
    const length = Number(view.getBigUint64(offset, true));
    const end = offset + 12 + length + 4;
    if (end > bytes.length) break; // still being written
    const data = bytes.subarray(offset + 12, offset + 12 + length);
    if (view.getUint32(offset + 12 + length, true) !== maskedCrc32c(data)) {
      throw new InvalidOptionError(
        "events",
        `${source}: the data CRC of the record at byte ${offset} does not match`,
      );
    }
    records.push(data);
    offset = end;
  }
  return records;
}
