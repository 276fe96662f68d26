// The members of a deterministic filler layer with 96 MiB of files, which turns
// the busybox test image into one of about 100 MiB for the import benchmark.
//
// The file data mixes what real images carry. Large files of random bytes
// stand for compressed archives and media, which no compressor shrinks.
// Text files stand for source code and configuration, which gzip shrinks to
// about a quarter. Thousands of 4 KiB files make the importer's per-file
// work count, not only its throughput. All bytes come from AES-256-CTR under
// a fixed key, so every build writes the same layer and the same digests.

import { createCipheriv, createHash } from 'node:crypto';
import { directory, file } from './tar-build.mjs';

const MIB = 1024 * 1024;
const KIB = 1024;

/**
 * The parts of the payload layer: how many files of which size, and whether
 * their bytes are random or text. `mixed` alternates the two, and
 * `subdirectories` spreads a part's files over that many directories.
 */
export const PAYLOAD_PARTS = Object.freeze([
  { dir: 'opt/payload/blobs', count: 4, size: 16 * MIB, content: 'random', subdirectories: 0 },
  { dir: 'opt/payload/text', count: 256, size: 64 * KIB, content: 'text', subdirectories: 0 },
  { dir: 'opt/payload/small', count: 4096, size: 4 * KIB, content: 'mixed', subdirectories: 64 },
]);

/** Sums the file data of the payload layer in bytes, without tar headers and padding: 96 MiB. */
export function payloadBytes() {
  return PAYLOAD_PARTS.reduce((sum, part) => sum + part.count * part.size, 0);
}

// The words of the text files. Lines of six to thirteen words drawn from
// these 64 give text that zlib's default gzip level shrinks to 23 %.
const WORDS = [
  'const', 'return', 'function', 'import', 'export', 'from', 'value', 'index', 'buffer', 'length',
  'error', 'throw', 'new', 'if', 'else', 'for', 'while', 'true', 'false', 'null',
  'undefined', 'await', 'async', 'class', 'this', 'extends', 'string', 'number', 'object', 'array',
  'map', 'set', 'get', 'push', 'pop', 'slice', 'join', 'split', 'read', 'write',
  'open', 'close', 'path', 'file', 'directory', 'layer', 'image', 'config', 'digest', 'size',
  'mode', 'owner', 'group', 'link', 'target', 'source', 'mount', 'root', 'container', 'process',
  'signal', 'exit', 'status', 'result',
];

/**
 * Returns a function that gives the next `length` bytes of a deterministic
 * pseudo-random stream: the AES-256-CTR keystream of a key derived from
 * `seed`, with a zero counter block.
 */
function keystream(seed) {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (length) => cipher.update(Buffer.alloc(length));
}

/** Builds `size` bytes of text lines from `random`, cut to the exact size and ending in a newline. */
function textBytes(random, size) {
  const choices = random(size);
  const lines = [];
  let length = 0;
  let at = 0;

  while (length < size) {
    const wordCount = 6 + (choices[at++ % choices.length] % 8);
    const words = [];
    for (let word = 0; word < wordCount; word++) words.push(WORDS[choices[at++ % choices.length] % WORDS.length]);
    const line = `${words.join(' ')}\n`;
    lines.push(line);
    length += line.length;
  }

  const text = Buffer.from(lines.join('')).subarray(0, size);
  text[size - 1] = 0x0a;
  return text;
}

// The content of file `index` of a part: `random` or `text`.
function contentKind(part, index) {
  if (part.content !== 'mixed') return part.content;
  return index % 2 === 0 ? 'random' : 'text';
}

function fileName(part, index, kind) {
  const name = `file-${String(index).padStart(4, '0')}${kind === 'text' ? '.txt' : '.bin'}`;
  if (part.subdirectories === 0) return `${part.dir}/${name}`;
  return `${part.dir}/${subdirectoryName(index % part.subdirectories)}/${name}`;
}

function subdirectoryName(index) {
  return String(index).padStart(2, '0');
}

/** Lists the members of the payload layer: its directories, then {@link PAYLOAD_PARTS} file by file. */
export function payloadLayerMembers() {
  const random = keystream('m-docker benchmark payload layer');
  const members = [directory('opt'), directory('opt/payload')];

  for (const part of PAYLOAD_PARTS) {
    members.push(directory(part.dir));
    for (let index = 0; index < part.subdirectories; index++) members.push(directory(`${part.dir}/${subdirectoryName(index)}`));

    for (let index = 0; index < part.count; index++) {
      const kind = contentKind(part, index);
      const content = kind === 'random' ? random(part.size) : textBytes(random, part.size);
      members.push(file(fileName(part, index, kind), content));
    }
  }

  return members;
}
