/**
 * Machine-readable reason for a {@link WireFormatError}. Callers branch on the
 * code, and the message is for people.
 */
export type WireFormatErrorCode =
  | 'BAD_MAGIC'
  | 'BAD_VERSION'
  | 'UNKNOWN_TYPE'
  | 'BAD_FLAGS'
  | 'FRAME_TOO_LARGE'
  /** End of stream in the middle of a frame. */
  | 'TRUNCATED'
  /** Bytes where none may follow: a payload on `ready` or `start`, which must be empty. */
  | 'TRAILING_BYTES'
  /** Payload that is not UTF-8 JSON of the shape its message type requires. */
  | 'INVALID_PAYLOAD'
  /** Container config that fails validation. The message names the field and the value. */
  | 'INVALID_CONFIG'
  /** Send or receive on a channel that is closed or whose stream failed. */
  | 'CHANNEL_CLOSED'
  /** Synchronous read or write on an fd with O_NONBLOCK set that would have to wait. */
  | 'WOULD_BLOCK'
  /** A message that carries a descriptor (`terminal`, `pidsLimit`) arrived without it, or cannot be sent with one. */
  | 'MISSING_DESCRIPTOR'
  /** Descriptors arrived with a frame of a type that carries fewer, or none. */
  | 'UNEXPECTED_DESCRIPTOR';

/** Structured details of a {@link WireFormatError}. Each code sets the fields that apply to it. */
export interface WireFormatErrorDetails {
  /** Underlying error, such as the SyntaxError from JSON.parse or the errno error from fs. */
  cause?: unknown;
  /** Path of the invalid field, such as `env[3]` or `error.stage`. */
  field?: string;
  /** Header byte that failed its check, for BAD_MAGIC, BAD_VERSION, UNKNOWN_TYPE and BAD_FLAGS. */
  byte?: number;
  /** Payload length in bytes from the frame header, or the count of unexpected trailing bytes. */
  length?: number;
  /** Maximum payload length in bytes that was in force, for FRAME_TOO_LARGE. */
  limit?: number;
  /** Bytes of the header or payload that arrived before the end of stream, for TRUNCATED; descriptors that arrived, for UNEXPECTED_DESCRIPTOR. */
  received?: number;
  /** Bytes that the header or payload needed, for TRUNCATED; descriptors that the message type carries, for UNEXPECTED_DESCRIPTOR. */
  expected?: number;
}

// Symbol.for gives the same symbol in every copy of this package that one
// process loads, so isInstance works where instanceof fails across copies.
const WIRE_FORMAT_ERROR_BRAND = Symbol.for('@m-docker/ipc/WireFormatError');

/** Error for every failure of the wire format and of the channels that carry it. */
export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
  readonly code: WireFormatErrorCode;
  declare readonly field?: string;
  declare readonly byte?: number;
  declare readonly length?: number;
  declare readonly limit?: number;
  declare readonly received?: number;
  declare readonly expected?: number;

  constructor(code: WireFormatErrorCode, message: string, details: WireFormatErrorDetails = {}) {
    super(message, 'cause' in details ? { cause: details.cause } : undefined);
    this.code = code;
    Object.defineProperty(this, WIRE_FORMAT_ERROR_BRAND, { value: true });

    if (details.field !== undefined) this.field = details.field;
    if (details.byte !== undefined) this.byte = details.byte;
    if (details.length !== undefined) this.length = details.length;
    if (details.limit !== undefined) this.limit = details.limit;
    if (details.received !== undefined) this.received = details.received;
    if (details.expected !== undefined) this.expected = details.expected;
  }

  /** Checks the brand, so errors from another copy of this package also match. */
  static isInstance(value: unknown): value is WireFormatError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[WIRE_FORMAT_ERROR_BRAND] === true
    );
  }
}
