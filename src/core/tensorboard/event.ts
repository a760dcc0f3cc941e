/**
 * The two protobuf messages TensorBoard's scalar dashboard reads, encoded and decoded by hand
 * (no protobuf dependency): `Event { double wall_time = 1; int64 step = 2; string file_version
 * = 3; Summary summary = 5; }`, `Summary { repeated Value value = 1; }`, `Value { string tag =
 * 1; float simple_value = 2; }` (tensorflow/core/util/event.proto, framework/summary.proto).
 */

/** One scalar of an event. */
export interface ScalarValue {
  tag: string;
  value: number;
}

/** A decoded event: a file version marker, or scalars at a step. */
export interface TensorBoardEvent {
  /** Seconds since the epoch. */
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: ScalarValue[];
}

const utf8 = new TextEncoder();

class ProtoWriter {
  readonly #parts: number[] = [];

  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.#parts.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#parts.push(Number(v));
    return this;
  }

  tag(field: number, wireType: number): this {
    return this.varint((field << 3) | wireType);
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length);
    for (const b of data) this.#parts.push(b);
    return this;
  }

  double(field: number, value: number): this {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value, true);
    this.tag(field, 1);
    for (let i = 0; i < 8; i++) this.#parts.push(view.getUint8(i));
    return this;
  }

  float(field: number, value: number): this {
    const view = new DataView(new ArrayBuffer(4));
    view.setFloat32(0, value, true);
    this.tag(field, 5);
    for (let i = 0; i < 4; i++) this.#parts.push(view.getUint8(i));
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

/** Encodes an `Event` with the file version (the first record of every event file). */
export function encodeFileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).bytes(3, utf8.encode("brain.Event:2")).finish();
}

/** Encodes an `Event` holding `scalars` (as `simple_value`s) at `step`. */
export function encodeScalarEvent(
  wallTime: number,
  step: number,
  scalars: readonly ScalarValue[],
): Uint8Array {
  const summary = new ProtoWriter();
  for (const { tag, value } of scalars) {
    summary.bytes(1, new ProtoWriter().bytes(1, utf8.encode(tag)).float(2, value).finish());
  }
  return new ProtoWriter()
    .double(1, wallTime)
    .tag(2, 0)
    .varint(step)
    .bytes(5, summary.finish())
    .finish();
}

class ProtoReader {
  #pos = 0;
  constructor(readonly data: Uint8Array) {}

  get done(): boolean {
    return this.#pos >= this.data.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.#pos >= this.data.length) throw new RangeError("truncated varint");
      const b = this.data[this.#pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new RangeError("varint longer than 64 bits");
    }
  }

  take(n: number): Uint8Array {
    if (this.#pos + n > this.data.length) throw new RangeError("truncated field");
    const out = this.data.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** Skips (or returns) one field's payload of `wireType`. */
  payload(wireType: number): Uint8Array | bigint {
    switch (wireType) {
      case 0:
        return this.varint();
      case 1:
        return this.take(8);
      case 2:
        return this.take(Number(this.varint()));
      case 5:
        return this.take(4);
      default:
        throw new RangeError(`unsupported wire type ${wireType}`);
    }
  }
}

const utf8Decoder = new TextDecoder();

function fields(data: Uint8Array): [number, number, Uint8Array | bigint][] {
  const reader = new ProtoReader(data);
  const out: [number, number, Uint8Array | bigint][] = [];
  while (!reader.done) {
    const key = Number(reader.varint());
    const wireType = key & 7;
    out.push([key >>> 3, wireType, reader.payload(wireType)]);
  }
  return out;
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/**
 * Decodes an `Event`, keeping wall time, step, file version and `simple_value` scalars
 * (other fields and value kinds are skipped).
 *
 * @throws RangeError on malformed protobuf.
 */
export function decodeEvent(data: Uint8Array): TensorBoardEvent {
  const event: TensorBoardEvent = { wallTime: 0, step: 0, scalars: [] };
  for (const [field, wire, payload] of fields(data)) {
    if (field === 1 && wire === 1) event.wallTime = view(payload as Uint8Array).getFloat64(0, true);
    else if (field === 2 && wire === 0) event.step = Number(BigInt.asIntN(64, payload as bigint));
    else if (field === 3 && wire === 2)
      event.fileVersion = utf8Decoder.decode(payload as Uint8Array);
    else if (field === 5 && wire === 2) {
      for (const [f, w, value] of fields(payload as Uint8Array)) {
        if (f !== 1 || w !== 2) continue;
        let tag: string | undefined;
        let simple: number | undefined;
        for (const [vf, vw, v] of fields(value as Uint8Array)) {
          if (vf === 1 && vw === 2) tag = utf8Decoder.decode(v as Uint8Array);
          if (vf === 2 && vw === 5) simple = view(v as Uint8Array).getFloat32(0, true);
        }
        if (tag !== undefined && simple !== undefined) event.scalars.push({ tag, value: simple });
      }
    }
  }
  return event;
}
