import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { initEntryPath } from '../src/index.js';

const BUILT_ENTRY = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('initEntryPath', () => {
  it('resolves built main.js', () => {
    expect(initEntryPath()).toBe(BUILT_ENTRY);
    expect(existsSync(BUILT_ENTRY)).toBe(true);
  });

  it('resolves from another module URL', () => {
    expect(initEntryPath(import.meta.url)).toBe(BUILT_ENTRY);
  });
});
