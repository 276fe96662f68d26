import { errnoName, SyscallError } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';

// Passing open descriptors between processes over an AF_UNIX socket, as
// SCM_RIGHTS control messages of sendmsg(2) and recvmsg(2) (unix(7),
// cmsg(3)). The container's init sends the master of its pseudo-terminal to
// the CLI this way.
//
// struct msghdr, struct iovec and struct cmsghdr are laid out by hand in
// byte buffers, with the LP64 layout that x86_64 and aarch64 Linux share:
//
//   msghdr (56 bytes)           iovec (16 bytes)     cmsghdr (16 bytes, then data)
//    0 msg_name        ptr       0 iov_base  ptr      0 cmsg_len    size_t
//    8 msg_namelen     u32       8 iov_len   size_t   8 cmsg_level  int
//   16 msg_iov         ptr                            12 cmsg_type  int
//   24 msg_iovlen      size_t                         16 data: int descriptors
//   32 msg_control     ptr
//   40 msg_controllen  size_t
//   48 msg_flags       int
//
// The structs contain raw addresses, so every buffer they point to is a
// fresh ArrayBuffer, whose memory the garbage collector never moves, and
// stays referenced until the call returns. Data is copied through such a
// buffer.

const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
const CMSGHDR_SIZE = 16;

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;

/** sendmsg(2) flag: fail with EPIPE instead of raising SIGPIPE when the peer is gone. */
const MSG_NOSIGNAL = 0x4000;
/** recvmsg(2) flag: received descriptors are close-on-exec (Linux 2.6.23). */
const MSG_CMSG_CLOEXEC = 0x40000000;
/** recvmsg(2) result flag: the control buffer was too small, and the kernel closed what did not fit. */
const MSG_CTRUNC = 0x8;

const EINTR = 4;

/** Maximum count of descriptors that one receive takes; the kernel closes any beyond it and sets `truncated`. */
export const MAX_RECEIVED_DESCRIPTORS = 8;

/** Result of one recvmsg(2): the data byte count (0 at end of stream) and the descriptors that came with the data. */
export interface ReceivedData {
  count: number;
  /** New descriptors in this process, close-on-exec. The caller owns them. */
  descriptors: number[];
  /** More descriptors arrived than fit; the kernel closed the rest (MSG_CTRUNC). */
  truncated: boolean;
}

// CMSG_ALIGN, CMSG_LEN and CMSG_SPACE of cmsg(3) for 8-byte size_t.
const align = (length: number) => (length + 7) & ~7;
const controlLength = (descriptors: number) => CMSGHDR_SIZE + 4 * descriptors;
const controlSpace = (descriptors: number) => align(controlLength(descriptors));

function fail(syscall: string, errno: number, args: string): SyscallError {
  return new SyscallError({ syscall, errno, code: errnoName(errno), args });
}

/**
 * Sends `data` over the AF_UNIX socket `socket` with `descriptors` attached
 * as one SCM_RIGHTS control message (sendmsg(2)). The receiver gets new
 * descriptors for the same open files with the first byte of `data`.
 * Returns the count of bytes sent, which on a stream socket may be less than
 * `data.byteLength`; the caller sends the rest with write(2). Retries EINTR.
 * Throws a RangeError for empty data, because a stream socket carries
 * control messages only with at least one byte (unix(7)), and a
 * SyscallError such as EPIPE when the peer closed its end, EBADF for a
 * descriptor that is not open.
 */
export function sendDescriptors(socket: number, data: Uint8Array, descriptors: readonly number[]): number {
  if (data.byteLength === 0) throw new RangeError('sendDescriptors needs at least one byte of data to carry the descriptors');
  if (descriptors.length === 0) throw new RangeError('sendDescriptors needs at least one descriptor');

  const libc = loadLibc();
  const bytes = new Uint8Array(new ArrayBuffer(data.byteLength));
  bytes.set(data);

  const control = new Uint8Array(new ArrayBuffer(controlSpace(descriptors.length)));
  const controlView = new DataView(control.buffer);
  controlView.setBigUint64(0, BigInt(controlLength(descriptors.length)), true);
  controlView.setInt32(8, SOL_SOCKET, true);
  controlView.setInt32(12, SCM_RIGHTS, true);
  descriptors.forEach((descriptor, index) => {
    controlView.setInt32(CMSGHDR_SIZE + 4 * index, descriptor, true);
  });

  const { message, iovec } = messageHeader(libc.address(bytes), bytes.byteLength, libc.address(control), control.byteLength);
  return whilePinned([bytes, control, iovec], () => {
    for (;;) {
      const count = libc.sendmsg(socket, message, MSG_NOSIGNAL);
      if (count >= 0) return count;
      const errno = lastErrno();
      if (errno !== EINTR) throw fail('sendmsg', errno, `fd=${socket} SCM_RIGHTS ${descriptors.join(',')}`);
    }
  });
}

/**
 * Receives up to `buffer.byteLength` bytes from the AF_UNIX socket `socket`
 * into `buffer`, with the descriptors of any SCM_RIGHTS control message
 * that came with them (recvmsg(2) with MSG_CMSG_CLOEXEC). Returns the count,
 * 0 at end of stream. Retries EINTR. Throws a SyscallError such as
 * ECONNRESET. A plain read(2) of the same bytes would make the kernel close
 * the descriptors, so a reader that expects them must use this call.
 */
export function receiveDescriptors(socket: number, buffer: Uint8Array): ReceivedData {
  const libc = loadLibc();
  const bytes = new Uint8Array(new ArrayBuffer(Math.max(buffer.byteLength, 1)));
  const control = new Uint8Array(new ArrayBuffer(controlSpace(MAX_RECEIVED_DESCRIPTORS)));
  const { message, iovec } = messageHeader(libc.address(bytes), buffer.byteLength, libc.address(control), control.byteLength);

  const count = whilePinned([bytes, control, iovec], () => {
    for (;;) {
      const received = libc.recvmsg(socket, message, MSG_CMSG_CLOEXEC);
      if (received >= 0) return received;
      const errno = lastErrno();
      if (errno !== EINTR) throw fail('recvmsg', errno, `fd=${socket}`);
    }
  });

  buffer.set(bytes.subarray(0, count));
  const header = new DataView(message.buffer);
  const received = Number(header.getBigUint64(40, true));
  const truncated = (header.getInt32(48, true) & MSG_CTRUNC) !== 0;
  return { count, descriptors: parseRights(control, received), truncated };
}

// Builds a struct msghdr with one iovec. The iovec is returned too, so the
// caller keeps it referenced until the call returns.
function messageHeader(data: bigint, length: number, control: bigint, controlBytes: number) {
  const iovec = new Uint8Array(new ArrayBuffer(IOVEC_SIZE));
  const iovecView = new DataView(iovec.buffer);
  iovecView.setBigUint64(0, data, true);
  iovecView.setBigUint64(8, BigInt(length), true);

  const message = new Uint8Array(new ArrayBuffer(MSGHDR_SIZE));
  const view = new DataView(message.buffer);
  view.setBigUint64(16, loadLibc().address(iovec), true);
  view.setBigUint64(24, 1n, true);
  view.setBigUint64(32, control, true);
  view.setBigUint64(40, BigInt(controlBytes), true);
  return { message, iovec };
}

// Walks the control messages (CMSG_FIRSTHDR, CMSG_NXTHDR) and collects the
// descriptors of every SCM_RIGHTS message among the first `length` bytes.
function parseRights(control: Uint8Array, length: number): number[] {
  const view = new DataView(control.buffer);
  const descriptors: number[] = [];
  let offset = 0;
  while (offset + CMSGHDR_SIZE <= length) {
    const messageLength = Number(view.getBigUint64(offset, true));
    if (messageLength < CMSGHDR_SIZE || offset + messageLength > length) break;
    const level = view.getInt32(offset + 8, true);
    const type = view.getInt32(offset + 12, true);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let at = offset + CMSGHDR_SIZE; at + 4 <= offset + messageLength; at += 4) {
        descriptors.push(view.getInt32(at, true));
      }
    }
    offset += align(messageLength);
  }
  return descriptors;
}

// The structs contain raw addresses, which the garbage collector does not
// see. The buffers they point to stay in this set, and so allocated, until
// the kernel is done with them.
const pinned = new Set<object>();

function whilePinned<T>(buffers: readonly object[], call: () => T): T {
  for (const buffer of buffers) pinned.add(buffer);
  try {
    return call();
  } finally {
    for (const buffer of buffers) pinned.delete(buffer);
  }
}

/** The descriptor-passing functions in the shape that the `descriptors` option of @m-docker/ipc's sync channel takes. */
export const descriptorIo = {
  send: (fd: number, buffer: Uint8Array, offset: number, length: number, descriptors: readonly number[]) =>
    sendDescriptors(fd, buffer.subarray(offset, offset + length), descriptors),
  receive: (fd: number, buffer: Uint8Array, offset: number, length: number) =>
    receiveDescriptors(fd, buffer.subarray(offset, offset + length)),
  close: (fd: number) => {
    loadLibc().close(fd);
  },
};
