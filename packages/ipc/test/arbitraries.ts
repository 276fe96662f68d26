import fc from 'fast-check';

import {
  type ContainerConfig,
  INIT_STAGES,
  type InitFailure,
  LOG_LEVELS,
  type Message,
  type MountConfig,
  type RootConfig,
  type UserConfig,
} from '../src/index.js';

/*
 * fast-check arbitraries for messages whose strings contain what shells,
 * terminals and encoders get wrong: quotes, whitespace, command
 * substitution, globs, emoji and other multi-unit graphemes, and lone UTF-16
 * surrogates.
 */

/** Whole strings that have broken command lines in shells, loggers or encoders. */
export const NASTY_STRINGS = [
  '',
  ' ',
  '  leading and trailing  ',
  '"',
  "'",
  `it's "quoted"`,
  '\\',
  '\n',
  '\r\n',
  '\t',
  'a\u000bb\u000cc',
  '\u001b[31mred\u001b[0m',
  '$(rm -rf /)',
  '`id`',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${...} is the shell syntax under test
  '${HOME}',
  '$HOME',
  '*',
  '?',
  '[a-z]*.txt',
  '~',
  '; echo hi | cat && true || false &',
  '> /dev/null 2>&1',
  '%s %n %d',
  '-',
  '--',
  '-rf',
  'é',
  'e\u0301',
  'ß',
  '日本語',
  '😀',
  '👩‍👩‍👧‍👦',
  '🏳️‍🌈',
  '\u2028\u2029',
  '\ufeffbom',
  '\uffff',
  '\ud800',
  'a\udc00b',
  '\u{10ffff}',
  'x'.repeat(1000),
] as const;

/** Any single UTF-16 code unit except NUL, lone surrogates included. */
const codeUnit = fc.integer({ min: 1, max: 0xffff }).map((unit) => String.fromCharCode(unit));

/** Strings without NUL, from graphemes, raw code units and the nasty list. */
export const text: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: codeUnit }),
    fc.constantFrom(...NASTY_STRINGS),
    fc.array(fc.constantFrom(...NASTY_STRINGS), { maxLength: 4 }).map((parts) => parts.join('')),
  )
  .filter((value) => !value.includes('\0'));

const nonEmptyText = text.filter((value) => value.length > 0);

export const containerId = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((bytes) => Buffer.from(bytes).toString('hex'));

const envEntry = fc
  .tuple(
    nonEmptyText.filter((key) => !key.includes('=')),
    text,
  )
  .map(([key, value]) => `${key}=${value}`);

const hostname = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
  .filter((value) => {
    const bytes = Buffer.byteLength(value, 'utf8');
    return bytes >= 1 && bytes <= 64 && !value.includes('/') && !value.includes('\0');
  });

const cwd = fc
  .array(text.filter((segment) => !segment.includes('/')), { maxLength: 5 })
  .map((segments) => `/${segments.join('/')}`);

const absolutePath = cwd;

const rootConfig: fc.Arbitrary<RootConfig> = fc.record({
  target: absolutePath,
  lowerDirs: fc.array(absolutePath, { minLength: 1, maxLength: 4 }),
  upperDir: absolutePath,
  workDir: absolutePath,
  readonly: fc.boolean(),
  shmSize: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
});

const mountConfig: fc.Arbitrary<MountConfig> = fc.oneof(
  fc.record({
    type: fc.constant('bind' as const),
    source: absolutePath,
    destination: absolutePath,
    readonly: fc.boolean(),
    data: fc.constant(''),
  }),
  fc.record({
    type: fc.constant('tmpfs' as const),
    source: fc.constant('tmpfs'),
    destination: absolutePath,
    readonly: fc.boolean(),
    data: text,
  }),
);

const userConfig: fc.Arbitrary<UserConfig> = fc.record({ spec: nonEmptyText, setHome: fc.boolean() });

export const containerConfig: fc.Arbitrary<ContainerConfig> = fc.record({
  id: containerId,
  argv: fc.tuple(nonEmptyText, fc.array(text, { maxLength: 8 })).map(([program, args]) => [program, ...args]),
  env: fc.array(envEntry, { maxLength: 8 }),
  hostname,
  cwd,
  interactive: fc.boolean(),
  terminal: fc.boolean(),
  root: fc.option(rootConfig, { nil: null }),
  mounts: fc.array(mountConfig, { maxLength: 4 }),
  user: fc.option(userConfig, { nil: null }),
  capabilities: fc.uniqueArray(fc.stringMatching(/^CAP_[A-Z0-9_]{1,24}$/), { maxLength: 41 }),
  logLevel: fc.constantFrom(...LOG_LEVELS),
});

export const initFailure: fc.Arbitrary<InitFailure> = fc.record(
  {
    stage: fc.constantFrom(...INIT_STAGES),
    code: fc.constantFrom('', 'ENOENT', 'EACCES', 'EPERM', 'E2BIG'),
    errno: fc.nat({ max: 4095 }),
    message: text,
    path: text,
  },
  { requiredKeys: ['stage', 'code', 'errno', 'message'] },
);

export const message: fc.Arbitrary<Message> = fc.oneof(
  containerConfig.map((config): Message => ({ type: 'config', config })),
  fc.constant<Message>({ type: 'ready' }),
  fc.constant<Message>({ type: 'start' }),
  initFailure.map((error): Message => ({ type: 'error', error })),
);

/** Splits `data` at the given positions, taken modulo its length, into consecutive chunks. */
export function splitAt(data: Uint8Array, positions: readonly number[]): Uint8Array[] {
  const cuts = [...new Set(positions.map((position) => position % (data.byteLength + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;

  for (const cut of cuts) {
    chunks.push(data.subarray(start, cut));
    start = cut;
  }
  chunks.push(data.subarray(start));
  return chunks;
}

/** Returns a valid config with the given fields replaced. */
export function sampleConfig(overrides: Partial<Record<keyof ContainerConfig, unknown>> = {}): ContainerConfig {
  return {
    id: 'a1'.repeat(32),
    argv: ['/bin/sh', '-c', 'echo "$HOME"'],
    env: ['PATH=/usr/bin:/bin', 'EMPTY='],
    hostname: 'box',
    cwd: '/',
    interactive: false,
    terminal: false,
    root: null,
    mounts: [],
    user: null,
    capabilities: ['CAP_CHOWN', 'CAP_KILL'],
    logLevel: 'info',
    ...overrides,
  } as ContainerConfig;
}
