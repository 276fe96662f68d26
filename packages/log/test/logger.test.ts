import { describe, expect, it } from 'vitest';

import { createLogger, type LogLevel } from '../src/index.js';

function capture(level: LogLevel) {
  const lines: string[] = [];
  const logger = createLogger({ level, component: 'cli', write: (line) => lines.push(line) });
  return { logger, lines };
}

describe('logger', () => {
  it.each([
    ['error', ['error']],
    ['warn', ['error', 'warn']],
    ['info', ['error', 'warn', 'info']],
    ['debug', ['error', 'warn', 'info', 'debug']],
  ] as const)('level %s prints %j', (level, printed) => {
    const { logger, lines } = capture(level);
    logger.error('e');
    logger.warn('w');
    logger.info('i');
    logger.debug('d');
    expect(lines.map((line) => line.split(' ')[1])).toEqual(printed);
  });

  it('line carries component, time and fields', () => {
    const { logger, lines } = capture('debug');
    logger.child({ id: 'abc123' }).debug('config sent', { bytes: 42 });
    expect(lines[0]).toMatch(/^m-docker\[cli\] debug \+\d+\.\dms config sent id=abc123 bytes=42\n$/);
  });

  it('quotes field values with spaces or quotes', () => {
    const { logger, lines } = capture('info');
    logger.info('failed', { path: 'a b', quote: '"', empty: '' });
    expect(lines[0]).toContain(' path="a b" quote="\\"" empty=""\n');
  });

  it('skips undefined fields', () => {
    const { logger, lines } = capture('info');
    logger.info('m', { missing: undefined, kept: 1 });
    expect(lines[0]).toMatch(/ m kept=1\n$/);
  });
});
