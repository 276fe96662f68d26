import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { memberRole, parseMemberName } from '../src/layer-member-name.js';

describe('parseMemberName', () => {
  it.each([
    ['etc/passwd', ['etc', 'passwd']],
    ['./etc/passwd', ['etc', 'passwd']],
    ['././etc//passwd/', ['etc', 'passwd']],
    ['etc/./passwd', ['etc', 'passwd']],
    ['./', []],
    ['.', []],
    ['', []],
    ['..foo/bar..', ['..foo', 'bar..']],
    ['dir\\..\\x', ['dir\\..\\x']],
  ])('accepts %j', (name, path) => {
    expect(parseMemberName(name)).toEqual({ ok: true, path });
  });

  it.each([
    ['/etc/passwd', 'the name is absolute'],
    ['.//etc/passwd', 'the name is absolute'],
    ['..', 'the name contains a ".." component'],
    ['../x', 'the name contains a ".." component'],
    ['a/../b', 'the name contains a ".." component'],
    ['./../x', 'the name contains a ".." component'],
    ['a/..', 'the name contains a ".." component'],
  ])('rejects %j', (name, reason) => {
    expect(parseMemberName(name)).toEqual({ ok: false, reason });
  });

  it('never returns a component that leaves the layer', () => {
    const component = fc.constantFrom('a', '.', '..', '', '.wh.x', '...');
    fc.assert(
      fc.property(fc.array(component, { maxLength: 6 }), fc.boolean(), (components, absolute) => {
        const parsed = parseMemberName(`${absolute ? '/' : ''}${components.join('/')}`);
        if (!parsed.ok) return;
        expect(parsed.path.every((part) => part !== '' && part !== '.' && part !== '..')).toBe(true);
      }),
    );
  });
});

describe('memberRole', () => {
  it.each([
    [['etc', 'passwd'], { kind: 'entry' }],
    [[], { kind: 'entry' }],
    [['etc', '.wh.motd'], { kind: 'whiteout', hidden: ['etc', 'motd'] }],
    [['.wh.etc'], { kind: 'whiteout', hidden: ['etc'] }],
    [['usr', '.wh..wh..opq'], { kind: 'opaque', directory: ['usr'] }],
    [['.wh..wh..opq'], { kind: 'opaque', directory: [] }],
    [['.wh..wh.plnk'], { kind: 'aufs-metadata' }],
    [['.wh..wh.plnk', '123.456'], { kind: 'aufs-metadata' }],
    [['.wh..wh.plnk', '.wh..wh..opq'], { kind: 'aufs-metadata' }],
    [['a', '.wh.'], { kind: 'invalid', reason: 'is a whiteout of "", which is not a file name' }],
    [['a', '.wh..'], { kind: 'invalid', reason: 'is a whiteout of ".", which is not a file name' }],
    [['a', '.wh...'], { kind: 'invalid', reason: 'is a whiteout of "..", which is not a file name' }],
    [['.wh.dir', 'file'], { kind: 'entry' }],
  ])('role of %j', (path, role) => {
    expect(memberRole(path)).toEqual(role);
  });
});
