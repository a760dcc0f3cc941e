/**
 * Whether a shared library still carries its symbol table (`.symtab`), i.e. was not stripped.
 * Reads the ELF section headers only; Mach-O and PE files (macOS, Windows addons) are not
 * inspected and report false — their release builds are stripped by the same Cargo profile.
 */
import { closeSync, openSync, readSync } from "node:fs";

function read(fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const got = readSync(fd, buffer, 0, length, offset);
  if (got !== length) throw new Error(`short read at ${offset}`);
  return buffer;
}

export function elfHasSymbolTable(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const ident = read(fd, 0, 64);
    if (ident.readUInt32BE(0) !== 0x7f454c46) return false; // not ELF
    if (ident[4] !== 2) throw new Error(`${path}: only 64-bit ELF is inspected`);
    const little = ident[5] === 1;
    const u16 = (b: Buffer, o: number) => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) =>
      Number(little ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const sectionHeaders = u64(ident, 0x28);
    const entrySize = u16(ident, 0x3a);
    const count = u16(ident, 0x3c);
    const namesIndex = u16(ident, 0x3e);
    const table = read(fd, sectionHeaders, entrySize * count);
    const names = table.subarray(namesIndex * entrySize);
    const strings = read(fd, u64(names, 0x18), u64(names, 0x20));
    for (let i = 0; i < count; i++) {
      const nameOffset = u32(table, i * entrySize);
      const end = strings.indexOf(0, nameOffset);
      if (strings.toString("latin1", nameOffset, end) === ".symtab") return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}
