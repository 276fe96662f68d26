import { chmodSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { type BunLookup, bunPackageNames, findBun, isSupportedVersion } from '../src/index.js';
import { makeTempDir, moduleUrlIn, removeTempDirs, writeBunPackage, writeFakeBun } from './helpers.js';

afterEach(removeTempDirs);

const X64 = '@oven/bun-linux-x64';
const X64_BASELINE = '@oven/bun-linux-x64-baseline';
const AARCH64 = '@oven/bun-linux-aarch64';
const AVX2_FLAGS = 'fpu sse4_2 avx avx2 bmi2';
const NO_AVX2_FLAGS = 'fpu sse4_2 avx';

// Every lookup names arch, cpuFlags and path, so that neither the host's CPU
// nor a Bun installed on the host can change the result.
function lookUp(root: string, options: { path?: string; arch?: string; cpuFlags?: string } = {}): BunLookup {
  return findBun({
    from: moduleUrlIn(root),
    path: options.path ?? '',
    arch: options.arch ?? 'x64',
    cpuFlags: options.cpuFlags ?? AVX2_FLAGS,
  });
}

function expectFound(lookup: BunLookup) {
  if (!lookup.found) throw new Error(`expected a Bun, got: ${lookup.reason}`);
  return lookup.bun;
}

function expectNotFound(lookup: BunLookup): string {
  if (lookup.found) throw new Error(`expected no Bun, got ${lookup.bun.path}`);
  return lookup.reason;
}

describe('isSupportedVersion', () => {
  it.each([
    ['1.4.0', true],
    ['1.4.5', true],
    ['1.10.0', true],
    ['2.0.0', true],
    ['1.5.0-canary.3', true],
    ['1.3.99', false],
    ['0.9.9', false],
    ['1.4', false],
    ['', false],
    ['garbage', false],
    // `bun --version` prints no leading v, so none is accepted.
    ['v1.4.0', false],
  ])('%j is %s', (version, expected) => {
    expect(isSupportedVersion(version)).toBe(expected);
  });
});

describe('bunPackageNames', () => {
  it.each([
    ['x64', AVX2_FLAGS, [X64, X64_BASELINE]],
    ['x64', NO_AVX2_FLAGS, [X64_BASELINE]],
    ['x64', '', [X64_BASELINE]],
    ['x64', 'avx2x avx512f', [X64_BASELINE]],
    ['arm64', 'fp asimd aes', [AARCH64]],
    ['ia32', AVX2_FLAGS, []],
    ['riscv64', '', []],
    ['s390x', '', []],
  ])('%s with flags %j', (arch, flags, expected) => {
    expect(bunPackageNames(arch, flags)).toEqual(expected);
  });
});

describe('findBun packages', () => {
  it('finds an executable package', () => {
    const root = makeTempDir();
    const binary = writeBunPackage(root, X64, { version: '1.4.7' });

    const bun = expectFound(lookUp(root));
    expect(bun.source).toBe('package');
    expect(bun.version).toBe('1.4.7');
    expect(bun.path).toBe(realpathSync(binary));
  });

  it('accepts a plain path as from', () => {
    const root = makeTempDir();
    const binary = writeBunPackage(root, X64);

    const bun = expectFound(findBun({ from: join(root, 'app', 'main.js'), path: '', arch: 'x64', cpuFlags: AVX2_FLAGS }));
    expect(bun.path).toBe(realpathSync(binary));
  });

  it('resolves from a parent node_modules', () => {
    const root = makeTempDir();
    const binary = writeBunPackage(root, X64);
    const deeper = join(root, 'a', 'b', 'c');
    mkdirSync(deeper, { recursive: true });

    expect(expectFound(lookUp(deeper)).path).toBe(realpathSync(binary));
  });

  it('skips a non-executable bin/bun', () => {
    const root = makeTempDir();
    const binary = writeBunPackage(root, X64, { executable: false });

    const reason = expectNotFound(lookUp(root));
    expect(reason).toContain(`${realpathSync(binary)} is missing or not executable`);
  });

  it('skips a missing bin/bun', () => {
    const root = makeTempDir();
    const packageDir = join(root, 'node_modules', X64);
    mkdirSync(packageDir, { recursive: true });
    writeFileSync(join(packageDir, 'package.json'), JSON.stringify({ name: X64, version: '1.4.5' }));

    const reason = expectNotFound(lookUp(root));
    expect(reason).toContain('bin/bun is missing or not executable');
  });

  it('uses baseline after a non-executable x64', () => {
    const root = makeTempDir();
    writeBunPackage(root, X64, { executable: false });
    const baseline = writeBunPackage(root, X64_BASELINE);

    expect(expectFound(lookUp(root)).path).toBe(realpathSync(baseline));
  });

  it('skips a package older than 1.4', () => {
    const root = makeTempDir();
    writeBunPackage(root, X64, { version: '1.3.9' });

    const reason = expectNotFound(lookUp(root));
    expect(reason).toContain(`${X64} is version 1.3.9, older than 1.4.0`);
  });

  it('skips a package without a version', () => {
    const root = makeTempDir();
    const packageDir = join(root, 'node_modules', X64);
    writeBunPackage(root, X64);
    writeFileSync(join(packageDir, 'package.json'), JSON.stringify({ name: X64 }));

    expect(expectNotFound(lookUp(root))).toContain(`${X64} is version , older than 1.4.0`);
  });

  // Node's resolver parses package.json and throws on invalid JSON, so such
  // a package counts as not installed.
  it('skips a package with invalid package.json', () => {
    const root = makeTempDir();
    writeBunPackage(root, X64);
    writeFileSync(join(root, 'node_modules', X64, 'package.json'), '{ not json');

    expect(expectNotFound(lookUp(root))).toContain(`${X64} is not installed`);
  });

  it('ignores x64 without avx2', () => {
    const root = makeTempDir();
    writeBunPackage(root, X64);
    const baseline = writeBunPackage(root, X64_BASELINE);

    expect(expectFound(lookUp(root, { cpuFlags: NO_AVX2_FLAGS })).path).toBe(realpathSync(baseline));
  });

  it('prefers x64 over baseline with avx2', () => {
    const root = makeTempDir();
    const x64 = writeBunPackage(root, X64);
    writeBunPackage(root, X64_BASELINE);

    expect(expectFound(lookUp(root, { cpuFlags: AVX2_FLAGS })).path).toBe(realpathSync(x64));
  });

  it('finds aarch64 on arm64', () => {
    const root = makeTempDir();
    writeBunPackage(root, X64);
    const aarch64 = writeBunPackage(root, AARCH64);

    expect(expectFound(lookUp(root, { arch: 'arm64', cpuFlags: 'fp asimd' })).path).toBe(realpathSync(aarch64));
  });

  it('ignores x64 packages on arm64', () => {
    const root = makeTempDir();
    writeBunPackage(root, X64);
    writeBunPackage(root, X64_BASELINE);

    expect(expectNotFound(lookUp(root, { arch: 'arm64' }))).toBe(`${AARCH64} is not installed; no bun on PATH`);
  });

  it('prefers a package to PATH', () => {
    const root = makeTempDir();
    const binary = writeBunPackage(root, X64);
    const bin = makeTempDir();
    writeFakeBun(bin, 'echo 1.4.2');

    const bun = expectFound(lookUp(root, { path: bin }));
    expect(bun.source).toBe('package');
    expect(bun.path).toBe(realpathSync(binary));
  });
});

describe('findBun PATH', () => {
  it.each([
    ['1.4.2', 'echo 1.4.2'],
    ['2.0.0', 'echo 2.0.0'],
    ['1.5.0-canary.3', 'echo 1.5.0-canary.3'],
    ['1.4.0', 'printf "  1.4.0  \\n"'],
  ])('finds bun reporting %s', (version, body) => {
    const root = makeTempDir();
    const bin = makeTempDir();
    const binary = writeFakeBun(bin, body);

    const bun = expectFound(lookUp(root, { path: bin }));
    expect(bun).toEqual({ path: binary, version, source: 'path' });
  });

  it.each([
    ['1.3.9', 'echo 1.3.9', 'is version 1.3.9, older than 1.4.0'],
    ['v1.4.0', 'echo v1.4.0', 'is version v1.4.0, older than 1.4.0'],
    ['exit 1', 'exit 1', '--version failed (status 1)'],
    ['exit 0 without output', 'exit 0', '--version failed'],
    ['killed', 'kill -9 $$', '--version failed'],
  ])('rejects bun with %s', (_case, body, reason) => {
    const root = makeTempDir();
    const bin = makeTempDir();
    const binary = writeFakeBun(bin, body);

    expect(expectNotFound(lookUp(root, { path: bin }))).toContain(`${binary} ${reason}`);
  });

  it('runs bun --version with an empty environment', () => {
    const root = makeTempDir();
    const bin = makeTempDir();
    writeFakeBun(bin, 'if [ -n "$HOME$M_DOCKER_JS_RUNTIME" ]; then echo 1.0.0; else echo 1.4.2; fi');

    expect(expectFound(lookUp(root, { path: bin })).version).toBe('1.4.2');
  });

  it('searches PATH folders in order', () => {
    const root = makeTempDir();
    const empty = makeTempDir();
    const first = makeTempDir();
    const second = makeTempDir();
    const binary = writeFakeBun(first, 'echo 1.4.3');
    writeFakeBun(second, 'echo 1.4.4');

    const bun = expectFound(lookUp(root, { path: `${empty}::${first}:${second}` }));
    expect(bun.path).toBe(binary);
    expect(bun.version).toBe('1.4.3');
  });

  it('skips a non-executable bun on PATH', () => {
    const root = makeTempDir();
    const first = makeTempDir();
    const second = makeTempDir();
    chmodSync(writeFakeBun(first, 'echo 1.4.3'), 0o644);
    const binary = writeFakeBun(second, 'echo 1.4.4');

    expect(expectFound(lookUp(root, { path: `${first}:${second}` })).path).toBe(binary);
  });

  it('skips a folder named bun on PATH', () => {
    const root = makeTempDir();
    const first = makeTempDir();
    const second = makeTempDir();
    mkdirSync(join(first, 'bun'));
    const binary = writeFakeBun(second, 'echo 1.4.4');

    expect(expectFound(lookUp(root, { path: `${first}:${second}` })).path).toBe(binary);
  });

  it('stops at the first bun on PATH', () => {
    const root = makeTempDir();
    const first = makeTempDir();
    const second = makeTempDir();
    const old = writeFakeBun(first, 'echo 1.3.0');
    writeFakeBun(second, 'echo 1.4.4');

    expect(expectNotFound(lookUp(root, { path: `${first}:${second}` }))).toContain(`${old} is version 1.3.0`);
  });
});

describe('findBun without Bun', () => {
  it('lists each cause on x64 with avx2', () => {
    const root = makeTempDir();
    const bin = makeTempDir();

    const reason = expectNotFound(lookUp(root, { path: bin }));
    expect(reason).toBe(`${X64} is not installed; ${X64_BASELINE} is not installed; no bun on PATH`);
  });

  it('lists each cause on x64 without avx2', () => {
    const root = makeTempDir();

    expect(expectNotFound(lookUp(root, { cpuFlags: NO_AVX2_FLAGS }))).toBe(`${X64_BASELINE} is not installed; no bun on PATH`);
  });

  it('lists each cause on an unknown arch', () => {
    const root = makeTempDir();

    expect(expectNotFound(lookUp(root, { arch: 'ia32' }))).toBe('no bun on PATH');
  });

  it('lists package and PATH causes together', () => {
    const root = makeTempDir();
    const x64 = writeBunPackage(root, X64, { executable: false });
    writeBunPackage(root, X64_BASELINE, { version: '1.2.0' });
    const bin = makeTempDir();
    const onPath = writeFakeBun(bin, 'exit 3');

    const causes = expectNotFound(lookUp(root, { path: bin })).split('; ');
    expect(causes).toEqual([
      `${realpathSync(x64)} is missing or not executable`,
      `${X64_BASELINE} is version 1.2.0, older than 1.4.0`,
      `${onPath} --version failed (status 3)`,
    ]);
  });
});
