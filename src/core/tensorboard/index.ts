export { crc32c, maskedCrc32c } from "./crc32c.js";
export type { ScalarValue, TensorBoardEvent } from "./event.js";
export { frameRecord, readRecords } from "./records.js";
export { readTensorBoardEvents, TensorBoardWriter } from "./writer.js";
