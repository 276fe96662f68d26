import { describe, expect, it } from 'vitest';

import { humanDuration, humanSize, shortId, timeAgo } from '../src/image/human-units.js';
import { formatProgress, ProgressBar } from '../src/image/progress-bar.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const MONTH = 30 * DAY;
const YEAR = 365 * DAY;

describe('humanSize', () => {
  it.each([
    [0, '0B'],
    [999, '999B'],
    [1000, '1kB'],
    [1234, '1.23kB'],
    [880_000, '880kB'],
    [4_261_234, '4.26MB'],
    [12_345_678, '12.3MB'],
    [123_456_789, '123MB'],
    [999_600, '1MB'],
    [1_500_000_000, '1.5GB'],
  ])('%d bytes is %s', (bytes, text) => {
    expect(humanSize(bytes)).toBe(text);
  });
});

describe('humanDuration', () => {
  it.each([
    [450, 'Less than a second'],
    [1 * SECOND, '1 second'],
    [47 * SECOND, '47 seconds'],
    [59 * SECOND, '59 seconds'],
    [1 * MINUTE, 'About a minute'],
    [35 * MINUTE + 40 * SECOND, '35 minutes'],
    [59 * MINUTE, '59 minutes'],
    [1 * HOUR + 29 * MINUTE, 'About an hour'],
    [1 * HOUR + 31 * MINUTE, '2 hours'],
    [36 * HOUR, '36 hours'],
    [2 * DAY, '2 days'],
    [13 * DAY + 5 * HOUR, '13 days'],
    [2 * WEEK, '2 weeks'],
    [1 * MONTH + 2 * WEEK, '6 weeks'],
    [2 * MONTH, '2 months'],
    [24 * MONTH, '24 months'],
    [24 * MONTH + 2 * WEEK, '2 years'],
    [3 * YEAR + 2 * MONTH, '3 years'],
  ])('%d ms is %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

describe('timeAgo', () => {
  const now = Date.parse('2024-01-04T03:04:05Z');

  it.each([
    ['2024-01-02T03:04:05Z', '2 days ago'],
    ['2024-01-04T03:04:05.5Z', 'Less than a second ago'],
    [undefined, 'N/A'],
    ['not a time', 'N/A'],
  ])('%s is %s', (created, text) => {
    expect(timeAgo(created, now)).toBe(text);
  });
});

describe('shortId', () => {
  it('keeps 12 hex digits', () => {
    expect(shortId(`sha256:${'0123456789ab'.repeat(5)}cdef`)).toBe('0123456789ab');
  });
});

describe('formatProgress', () => {
  it.each([
    [{ phase: 'read', bytesDone: 0, bytesTotal: 10_000_000 }, `Reading   [>${' '.repeat(29)}]   0% 0B/10MB`],
    [{ phase: 'unpack', bytesDone: 4_500_000, bytesTotal: 10_000_000 }, `Unpacking [${'='.repeat(13)}>${' '.repeat(16)}]  45% 4.5MB/10MB`],
    [{ phase: 'unpack', bytesDone: 10_000_000, bytesTotal: 10_000_000 }, `Unpacking [${'='.repeat(30)}] 100% 10MB/10MB`],
    [{ phase: 'read', bytesDone: 0, bytesTotal: 0 }, `Reading   [${'='.repeat(30)}] 100% 0B/0B`],
  ] as const)('%j', (progress, line) => {
    expect(formatProgress(progress)).toBe(line);
  });
});

describe('ProgressBar', () => {
  it('redraws on percent or phase change', () => {
    const written: string[] = [];
    const bar = new ProgressBar((text) => written.push(text));

    for (let done = 0; done <= 1000; done += 1) bar.update({ phase: 'read', bytesDone: done, bytesTotal: 1000 });
    bar.update({ phase: 'unpack', bytesDone: 0, bytesTotal: 10 });
    bar.finish();
    bar.finish();

    expect(written).toHaveLength(101 + 1 + 1);
    expect(written.every((text) => text.startsWith('\r\x1b[K'))).toBe(true);
    expect(written.at(-1)).toBe('\r\x1b[K');
  });

  it('writes nothing when it never drew', () => {
    const written: string[] = [];
    new ProgressBar((text) => written.push(text)).finish();

    expect(written).toEqual([]);
  });
});
