import { describe, expect, it } from 'vitest';

import { WireFormatError } from '../src/index.js';

describe('WireFormatError', () => {
  it('error keeps code, message and details', () => {
    const error = new WireFormatError('FRAME_TOO_LARGE', 'frame length 9 exceeds the 8-byte limit', {
      length: 9,
      limit: 8,
    });

    expect(error.name).toBe('WireFormatError');
    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.message).toBe('frame length 9 exceeds the 8-byte limit');
    expect(error.length).toBe(9);
    expect(error.limit).toBe(8);
    expect(error).toBeInstanceOf(Error);
  });

  it('error keeps its cause', () => {
    const cause = new Error('EPIPE');
    const error = new WireFormatError('CHANNEL_CLOSED', 'write on fd 3 failed', { cause });

    expect(error.cause).toBe(cause);
  });

  it('error omits unset details', () => {
    const error = new WireFormatError('TRUNCATED', 'end of stream after 3 of 8 header bytes');

    expect(Object.keys(error)).toEqual(['name', 'code']);
    expect('cause' in error).toBe(false);
  });

  it('isInstance accepts errors of this package', () => {
    expect(WireFormatError.isInstance(new WireFormatError('BAD_MAGIC', 'bad magic byte 0x41 (expected 0x4d)'))).toBe(
      true,
    );
  });

  it('isInstance accepts a branded error from another copy', () => {
    // Another copy of the package has another class but the same Symbol.for brand.
    const foreign = Object.assign(new Error('x'), { [Symbol.for('@m-docker/ipc/WireFormatError')]: true });

    expect(WireFormatError.isInstance(foreign)).toBe(true);
  });

  it.each([
    ['plain error', new Error('x')],
    ['lookalike', { name: 'WireFormatError', code: 'BAD_MAGIC' }],
    ['null', null],
    ['string', 'WireFormatError'],
    ['undefined', undefined],
  ])('isInstance rejects %s', (_name, value) => {
    expect(WireFormatError.isInstance(value)).toBe(false);
  });
});
