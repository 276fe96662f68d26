import { type ContainerConfig, validateConfig } from './config.js';
import { WireFormatError } from './errors.js';
import { FRAME_HEADER_SIZE, type Frame, type MessageTypeName, writeFrameHeader } from './frame.js';
import {
  checkObjectFields,
  checkString,
  invalidField,
  renderValue,
  type ShapeContext,
} from './shape.js';

/** Steps of the container's init. An InitFailure names the one that failed. */
export const INIT_STAGES = [
  'config',
  'mount',
  'rootfs',
  'hostname',
  'chdir',
  'user',
  'capabilities',
  'resolve',
  'session',
  'terminal',
  'fds',
  'exec',
  'cgroup',
] as const;
export type InitStage = (typeof INIT_STAGES)[number];

/** Failure report that the container's init sends when a step before exec fails. */
export interface InitFailure {
  stage: InitStage;
  /** errno name such as 'ENOENT', or '' when the failure has no errno. */
  code: string;
  /** errno value, or 0 when the failure has no errno. */
  errno: number;
  message: string;
  /** Path that the failing call used, if any. */
  path?: string;
}

export type Message =
  /** Parent to init: the container to set up. */
  | { type: 'config'; config: ContainerConfig }
  /** Init to parent: namespaces and mounts are set up, and init waits before exec. */
  | { type: 'ready' }
  /** Parent to init: exec the command now. */
  | { type: 'start' }
  /** Init to parent: setup failed, and init exits. */
  | { type: 'error'; error: InitFailure }
  /**
   * Init to parent: the master of the container's pseudo-terminal. `fd`
   * travels as SCM_RIGHTS data with the frame's bytes: the sender's
   * descriptor when sending, the receiver's new one when received.
   */
  | { type: 'terminal'; fd: number }
  /**
   * Parent to init, after config and before start: the container's
   * `pids.max`, open for writing, as `fd` (SCM_RIGHTS data, as with
   * `terminal`), and the limit that the init writes there right before
   * execve. `limit` travels in the JSON payload.
   */
  | { type: 'pidsLimit'; fd: number; limit: number };

/** Returns how many descriptors a frame of `type` carries as SCM_RIGHTS data: one for `terminal` and `pidsLimit`, none for the rest. */
export function descriptorCount(type: MessageTypeName): number {
  return type === 'terminal' || type === 'pidsLimit' ? 1 : 0;
}

/** Returns the descriptors that `message` carries, in the order the frame carries them. */
export function messageDescriptors(message: Message): number[] {
  return message.type === 'terminal' || message.type === 'pidsLimit' ? [message.fd] : [];
}

const FAILURE_CONTEXT: ShapeContext = { name: 'error', fieldPrefix: 'error.', code: 'INVALID_PAYLOAD' };
const FAILURE_REQUIRED_FIELDS = ['stage', 'code', 'errno', 'message'] as const;
const FAILURE_OPTIONAL_FIELDS = ['path'] as const;
const PIDS_LIMIT_CONTEXT: ShapeContext = { name: 'pidsLimit', fieldPrefix: 'pidsLimit.', code: 'INVALID_PAYLOAD' };

// fatal: invalid UTF-8 throws instead of becoming U+FFFD. ignoreBOM keeps a
// leading BOM in the text, where JSON.parse rejects it.
const UTF8_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Encodes a message as one frame. `config`, `error` and `pidsLimit` carry
 * UTF-8 JSON, and `ready`, `start` and `terminal` carry an empty payload.
 * The config, the failure and the limit are validated first, so the sender
 * gets the same error the receiver would raise. The descriptor of
 * `terminal` and `pidsLimit` is not in the frame: the sender attaches it
 * (writeMessageSync with `descriptors`).
 */
export function encodeMessage(message: Message): Buffer {
  switch (message.type) {
    case 'config':
      return encodeJsonFrame('config', validateConfig(message.config));
    case 'error':
      return encodeJsonFrame('error', validateInitFailure(message.error));
    case 'terminal':
      checkDescriptor(message.fd, 'terminal.fd');
      return encodeJsonFrame('terminal', undefined);
    case 'pidsLimit':
      checkDescriptor(message.fd, 'pidsLimit.fd');
      return encodeJsonFrame('pidsLimit', { limit: checkPidsLimit(message.limit) });
    case 'ready':
    case 'start':
      return encodeJsonFrame(message.type, undefined);
    default:
      throw new WireFormatError(
        'UNKNOWN_TYPE',
        `unknown message type ${renderValue((message as { type: unknown }).type)}`,
      );
  }
}

/**
 * Decodes and validates the message in `frame`, with the descriptors that
 * arrived with its bytes. Throws INVALID_PAYLOAD for a payload that is not
 * UTF-8 JSON of the right shape, INVALID_CONFIG for a config that fails
 * validateConfig, and TRAILING_BYTES for a payload on `ready`, `start` or
 * `terminal`. Throws MISSING_DESCRIPTOR for a `terminal` or `pidsLimit`
 * frame without its descriptor, and UNEXPECTED_DESCRIPTOR for descriptors
 * beyond what the type carries. It closes nothing, because the caller owns
 * the descriptors.
 */
export function decodeMessage(frame: Frame): Message {
  const descriptors = frame.descriptors ?? [];
  checkDescriptorCount(frame.type, descriptors.length);
  switch (frame.type) {
    case 'config':
      return { type: 'config', config: validateConfig(parseJsonPayload(frame)) };
    case 'error':
      return { type: 'error', error: validateInitFailure(parseJsonPayload(frame)) };
    case 'terminal':
      checkEmptyPayload(frame);
      return { type: 'terminal', fd: descriptors[0] as number };
    case 'pidsLimit':
      return { type: 'pidsLimit', fd: descriptors[0] as number, limit: parsePidsLimit(frame) };
    case 'ready':
    case 'start':
      checkEmptyPayload(frame);
      return { type: frame.type };
    default:
      throw new WireFormatError(
        'UNKNOWN_TYPE',
        `unknown message type ${renderValue((frame as { type: unknown }).type)}`,
      );
  }
}

function checkEmptyPayload(frame: Frame): void {
  if (frame.payload.byteLength !== 0) {
    throw new WireFormatError(
      'TRAILING_BYTES',
      `${frame.type} message has a ${frame.payload.byteLength}-byte payload (expected none)`,
      { length: frame.payload.byteLength },
    );
  }
}

function checkDescriptorCount(type: MessageTypeName, received: number): void {
  const expected = descriptorCount(type);
  if (received < expected) {
    throw new WireFormatError(
      'MISSING_DESCRIPTOR',
      `${type} message arrived without its descriptor (read it with recvmsg(2): the sync channel's descriptors option)`,
      { received, expected },
    );
  }
  if (received > expected) {
    throw new WireFormatError(
      'UNEXPECTED_DESCRIPTOR',
      `${type} message carried ${received} ${received === 1 ? 'descriptor' : 'descriptors'} (expected ${expected === 0 ? 'none' : expected})`,
      { received, expected },
    );
  }
}

function checkDescriptor(fd: unknown, field: 'terminal.fd' | 'pidsLimit.fd'): void {
  if (typeof fd !== 'number' || !Number.isSafeInteger(fd) || fd < 0) {
    throw new WireFormatError('INVALID_PAYLOAD', `${field} ${renderValue(fd)} must be an open descriptor (a non-negative integer)`, {
      field,
    });
  }
}

// The payload of pidsLimit is `{"limit": N}`.
function parsePidsLimit(frame: Frame): number {
  const fields = checkObjectFields(parseJsonPayload(frame), PIDS_LIMIT_CONTEXT, ['limit']);
  return checkPidsLimit(fields.limit);
}

// pids.max takes a count from 0 up or the word max. A parent that wants
// no limit sends no pidsLimit message.
function checkPidsLimit(limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
    throw invalidField(PIDS_LIMIT_CONTEXT, 'pidsLimit.limit', `${renderValue(limit)} must be a non-negative integer`);
  }
  return limit;
}

/** Encodes `body` as the UTF-8 JSON payload of one frame, or an empty payload when it is undefined. */
function encodeJsonFrame(type: MessageTypeName, body: object | undefined): Buffer {
  const json = body === undefined ? '' : JSON.stringify(body);
  const length = Buffer.byteLength(json, 'utf8');

  // Writing the JSON straight after the header avoids a second copy of a large payload.
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
  writeFrameHeader(frame, type, length);
  frame.write(json, FRAME_HEADER_SIZE, length, 'utf8');
  return frame;
}

function parseJsonPayload(frame: Frame): unknown {
  let text: string;
  try {
    text = UTF8_DECODER.decode(frame.payload);
  } catch (error) {
    throw new WireFormatError('INVALID_PAYLOAD', `${frame.type} payload is not valid UTF-8`, {
      cause: error,
    });
  }

  try {
    return JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new WireFormatError('INVALID_PAYLOAD', `${frame.type} payload is not valid JSON: ${reason}`, {
      cause: error,
    });
  }
}

/** Validates a parsed InitFailure and returns a copy with exactly its fields. */
function validateInitFailure(value: unknown): InitFailure {
  const fields = checkObjectFields(value, FAILURE_CONTEXT, FAILURE_REQUIRED_FIELDS, FAILURE_OPTIONAL_FIELDS);

  const stage = INIT_STAGES.find((candidate) => candidate === fields.stage);
  if (stage === undefined) {
    throw invalidField(
      FAILURE_CONTEXT,
      'error.stage',
      `${renderValue(fields.stage)} must be one of ${INIT_STAGES.join(', ')}`,
    );
  }

  const errno = fields.errno;
  if (typeof errno !== 'number' || !Number.isSafeInteger(errno) || errno < 0) {
    throw invalidField(
      FAILURE_CONTEXT,
      'error.errno',
      `${renderValue(errno)} must be a non-negative integer`,
    );
  }

  const failure: InitFailure = {
    stage,
    code: checkString(fields.code, FAILURE_CONTEXT, 'error.code'),
    errno,
    message: checkString(fields.message, FAILURE_CONTEXT, 'error.message'),
  };
  if (fields.path !== undefined) {
    failure.path = checkString(fields.path, FAILURE_CONTEXT, 'error.path');
  }
  return failure;
}
