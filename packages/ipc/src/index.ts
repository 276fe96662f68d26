export { MessageChannel } from './channel.js';
export {
  type ContainerConfig,
  DEFAULT_CAPABILITIES,
  HOSTNAME_MAX_BYTES,
  LOG_LEVELS,
  type LogLevel,
  type MountConfig,
  type RootConfig,
  type UserConfig,
  validateConfig,
} from './config.js';
export { decodeFrames, FrameDecoder } from './decoder.js';
export { WireFormatError, type WireFormatErrorCode, type WireFormatErrorDetails } from './errors.js';
export {
  DEFAULT_MAX_FRAME_SIZE,
  type DecoderOptions,
  encodeFrame,
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FRAME_VERSION,
  type Frame,
  MAX_FRAME_LENGTH_FIELD,
  MessageType,
  type MessageTypeName,
  parseFrameHeader,
} from './frame.js';
export {
  decodeMessage,
  descriptorCount,
  encodeMessage,
  INIT_STAGES,
  type InitFailure,
  type InitStage,
  type Message,
} from './messages.js';
export {
  type DescriptorIo,
  type FdIo,
  type ReceivedBytes,
  readMessageSync,
  type SyncChannelOptions,
  writeMessageSync,
} from './sync-channel.js';
