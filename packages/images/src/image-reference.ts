import { ImageError } from './errors.js';

/** A parsed `NAME[:TAG]` reference in docker's short ("familiar") form, such as `busybox` and `latest`. */
export interface ImageReference {
  name: string;
  tag: string;
}

// The grammar is docker's (the distribution/reference package): a name is
// an optional registry host, then path components of lowercase letters and
// digits joined by `.`, `_`, `__` or runs of `-`, separated by `/`. A tag is
// a word character followed by up to 127 word characters, dots and dashes.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const TAG = /^\w[\w.-]{0,127}$/;
const FULL_HEX_ID = /^[0-9a-f]{64}$/;
const MAX_NAME_LENGTH = 255;

export const DEFAULT_TAG = 'latest';

/**
 * Parses `NAME[:TAG]` with docker's rules and returns it in the familiar
 * form: `docker.io/library/busybox` becomes `busybox`. Throws ImageError
 * INVALID_REFERENCE with the reason. Digest references (`NAME@sha256:...`)
 * are rejected, because the store keeps no registry digests.
 */
export function parseReference(reference: string): ImageReference {
  if (reference.includes('@')) {
    throw invalidReference(reference, 'digest references are not supported: use NAME:TAG or an image id');
  }

  const lastSlash = reference.lastIndexOf('/');
  const colon = reference.indexOf(':', lastSlash + 1);
  const name = colon === -1 ? reference : reference.slice(0, colon);
  const tag = colon === -1 ? DEFAULT_TAG : reference.slice(colon + 1);

  validateName(reference, name);
  if (!TAG.test(tag)) {
    throw invalidReference(reference, 'a tag is 1 to 128 letters, digits, `_`, `.` and `-`, and does not start with `.` or `-`');
  }
  return { name: familiarName(name), tag };
}

/** Formats a reference as `NAME:TAG`, the key of repositories.json. */
export function formatReference(reference: ImageReference): string {
  return `${reference.name}:${reference.tag}`;
}

/** Parses and formats in one step: `busybox` gives `busybox:latest`. */
export function normalizeReference(reference: string): string {
  return formatReference(parseReference(reference));
}

/** Splits a stored `NAME:TAG` key at its last colon, which comes after the last slash. */
export function splitReference(key: string): ImageReference {
  const colon = key.lastIndexOf(':');
  return { name: key.slice(0, colon), tag: key.slice(colon + 1) };
}

function validateName(reference: string, name: string): void {
  if (name === '') throw invalidReference(reference, 'the name is empty');
  if (name.length > MAX_NAME_LENGTH) {
    throw invalidReference(reference, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  const components = name.split('/');
  if (components.length > 1 && isDomain(components[0] as string)) components.shift();
  for (const component of components) {
    if (PATH_COMPONENT.test(component)) continue;
    if (PATH_COMPONENT.test(component.toLowerCase())) {
      throw invalidReference(reference, 'repository names must be lowercase');
    }
    throw invalidReference(
      reference,
      'a name is lowercase letters, digits and the separators `.`, `_`, `__` and `-`, in components joined by `/`',
    );
  }
  if (components.length === 1 && FULL_HEX_ID.test(name)) {
    throw invalidReference(reference, 'a name cannot be 64 hexadecimal characters, which is the form of an image id');
  }
}

// As in docker, the first component names a registry host only when it
// contains `.` or `:`, is `localhost`, or has an uppercase letter.
function isDomain(component: string): boolean {
  const [host, port, ...rest] = component.split(':');
  if (rest.length > 0 || host === undefined) return false;
  if (port !== undefined && !PORT.test(port)) return false;
  if (!host.split('.').every((part) => DOMAIN_COMPONENT.test(part))) return false;
  return host.includes('.') || port !== undefined || host === 'localhost' || host !== host.toLowerCase();
}

// docker.io is docker's default registry and `library/` its namespace for
// official images, so `docker.io/library/busybox` and `busybox` are the
// same image. The store keeps the short form that `docker images` shows.
function familiarName(name: string): string {
  for (const registry of ['docker.io/', 'index.docker.io/']) {
    if (!name.startsWith(registry)) continue;
    const path = name.slice(registry.length);
    return path.startsWith('library/') && path.split('/').length === 2 ? path.slice('library/'.length) : path;
  }
  return name;
}

function invalidReference(reference: string, reason: string): ImageError {
  return new ImageError('INVALID_REFERENCE', `invalid reference ${JSON.stringify(reference)}: ${reason}`);
}
