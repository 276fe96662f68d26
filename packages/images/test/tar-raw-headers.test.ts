import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { paddedSize, RetainedBytes, readPaxRecords, typeFlagAt } from '../src/tar-raw-headers.js';
import { paxHeader, paxRecords, rawHeader, rawMember } from './layer-tars.js';

function retain(bytes: Buffer, chunkSize = bytes.length): RetainedBytes {
  const retained = new RetainedBytes();
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    retained.append(bytes.subarray(offset, offset + chunkSize));
  }
  return retained;
}

describe('RetainedBytes', () => {
  it('slice across chunks', () => {
    const retained = retain(Buffer.from('0123456789'), 3);

    expect(retained.slice(2, 8)?.toString()).toBe('234567');
  });

  it('slice of discarded or unread bytes is undefined', () => {
    const retained = retain(Buffer.from('0123456789'), 4);
    retained.discardBefore(5);

    expect(retained.slice(4, 6)).toBeUndefined();
    expect(retained.slice(8, 11)).toBeUndefined();
    expect(retained.slice(5, 10)?.toString()).toBe('56789');
  });

  it('bytes appended before the kept start are not stored', () => {
    const retained = new RetainedBytes();
    retained.discardBefore(6);
    retained.append(Buffer.from('0123'));
    retained.append(Buffer.from('4567'));

    expect(retained.slice(6, 8)?.toString()).toBe('67');
    expect(retained.slice(5, 8)).toBeUndefined();
  });

  it('slice equals the stream for any chunking', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 50 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        (data, chunkSize, keep, a, b) => {
          const bytes = Buffer.from(data);
          const retained = retain(bytes, chunkSize);
          const keepFrom = keep % bytes.length;
          retained.discardBefore(keepFrom);
          const start = keepFrom + (a % (bytes.length - keepFrom + 1));
          const end = start + (b % (bytes.length - start + 1));

          expect(retained.slice(start, end)).toEqual(bytes.subarray(start, end));
        },
      ),
    );
  });
});

describe('readPaxRecords', () => {
  it('values stay raw bytes', () => {
    const binary = Buffer.from([0x80, 0x00, 0xff, 0x0a]);
    const bytes = paxHeader([
      ['SCHILY.xattr.security.capability', binary],
      ['path', 'a/b'],
    ]);

    const records = readPaxRecords(retain(bytes), 0, bytes.length);

    expect(records?.get('SCHILY.xattr.security.capability')).toEqual(binary);
    expect(records?.get('path')?.toString()).toBe('a/b');
  });

  it('skips GNU long names and zero blocks', () => {
    const bytes = Buffer.concat([
      rawMember({ name: '././@LongLink', type: 'L' }, Buffer.from(`${'n'.repeat(700)}\0`)),
      Buffer.alloc(512),
      paxHeader([['SCHILY.xattr.user.a', '1']]),
    ]);

    const records = readPaxRecords(retain(bytes, 100), 0, bytes.length);

    expect([...(records ?? [])].map(([key, value]) => [key, value.toString()])).toEqual([['SCHILY.xattr.user.a', '1']]);
  });

  it('later record replaces an earlier one', () => {
    const bytes = paxHeader([
      ['SCHILY.xattr.user.a', 'first'],
      ['SCHILY.xattr.user.a', 'second'],
    ]);

    expect(readPaxRecords(retain(bytes), 0, bytes.length)?.get('SCHILY.xattr.user.a')?.toString()).toBe('second');
  });

  it('range that splits a header is undefined', () => {
    const bytes = paxHeader([['SCHILY.xattr.user.a', '1']]);

    expect(readPaxRecords(retain(bytes), 0, bytes.length - 512 + 100)).toBeUndefined();
  });

  it('base-256 size field', () => {
    const data = paxRecords([['SCHILY.xattr.user.big', 'v']]);
    const header = rawHeader({ name: 'PaxHeader', type: 'x', size: 0 });
    header.fill(0, 124, 136);
    header[124] = 0x80;
    header[135] = data.length;
    const bytes = Buffer.concat([header, data, Buffer.alloc(paddedSize(data.length) - data.length)]);

    expect(readPaxRecords(retain(bytes), 0, bytes.length)?.get('SCHILY.xattr.user.big')?.toString()).toBe('v');
  });
});

describe('typeFlagAt', () => {
  it('type flag of a retained header', () => {
    const bytes = Buffer.concat([Buffer.alloc(512), rawHeader({ name: 'x', type: 'S' })]);

    expect(typeFlagAt(retain(bytes), 512)).toBe('S'.charCodeAt(0));
  });
});
