import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitReference } from '../src/image-reference.js';
import { ImageError, normalizeReference, parseReference } from '../src/index.js';

describe('parseReference', () => {
  it.each([
    ['busybox', 'busybox', 'latest'],
    ['busybox:1.36', 'busybox', '1.36'],
    ['library/busybox', 'library/busybox', 'latest'],
    ['docker.io/library/busybox:1', 'busybox', '1'],
    ['index.docker.io/library/busybox', 'busybox', 'latest'],
    ['docker.io/busybox', 'busybox', 'latest'],
    ['docker.io/user/app:v2', 'user/app', 'v2'],
    ['docker.io/library/a/b', 'library/a/b', 'latest'],
    ['localhost/app', 'localhost/app', 'latest'],
    ['localhost:5000/app:dev', 'localhost:5000/app', 'dev'],
    ['Registry.Example.com/team/app:TAG_1.0-rc', 'Registry.Example.com/team/app', 'TAG_1.0-rc'],
    ['a__b.c-d---e/f_g', 'a__b.c-d---e/f_g', 'latest'],
    ['app:_tag', 'app', '_tag'],
    [`app:${'t'.repeat(128)}`, 'app', 't'.repeat(128)],
  ])('%s gives %s and tag %s', (reference, name, tag) => {
    expect(parseReference(reference)).toEqual({ name, tag });
  });

  it.each([
    ['', 'the name is empty'],
    [':latest', 'the name is empty'],
    ['BusyBox', 'repository names must be lowercase'],
    ['team/App', 'repository names must be lowercase'],
    ['app:', 'a tag is 1 to 128'],
    ['app:-x', 'a tag is 1 to 128'],
    ['app:.x', 'a tag is 1 to 128'],
    [`app:${'t'.repeat(129)}`, 'a tag is 1 to 128'],
    ['app@sha256:0123', 'digest references are not supported'],
    ['-app', 'a name is lowercase letters'],
    ['app-', 'a name is lowercase letters'],
    ['a..b', 'a name is lowercase letters'],
    ['a//b', 'a name is lowercase letters'],
    ['app/', 'a name is lowercase letters'],
    ['app name', 'a name is lowercase letters'],
    ['0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'a name cannot be 64 hexadecimal characters'],
    [`${'a'.repeat(256)}`, 'the name is longer than 255 characters'],
  ])('rejects %j: %s', (reference, reason) => {
    let error: unknown;
    try {
      parseReference(reference);
    } catch (caught) {
      error = caught;
    }
    expect(ImageError.isInstance(error)).toBe(true);
    expect((error as ImageError).code).toBe('INVALID_REFERENCE');
    expect((error as Error).message.startsWith(`invalid reference ${JSON.stringify(reference)}: `)).toBe(true);
    expect((error as Error).message).toContain(reason);
  });

  const component = fc.stringMatching(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/, { maxLength: 20 }).filter((text) => text.length > 0);
  const tag = fc.stringMatching(/^\w[\w.-]{0,40}$/);

  it('round-trips every valid NAME:TAG', () => {
    fc.assert(
      fc.property(fc.array(component, { minLength: 1, maxLength: 4 }), tag, (components, tagText) => {
        const name = components.join('/');
        fc.pre(!/^[0-9a-f]{64}$/.test(name) && !name.startsWith('library/') && name.length <= 255);
        const key = normalizeReference(`${name}:${tagText}`);
        expect(key).toBe(`${name}:${tagText}`);
        expect(splitReference(key)).toEqual({ name, tag: tagText });
        expect(normalizeReference(key)).toBe(key);
      }),
    );
  });
});
