import type { ImageSummary } from '@m-docker/images';

import { CliError } from '../cli-error.js';
import { humanSize, shortId, timeAgo } from './human-units.js';

// `image ls --format` as docker reads it: `table` (the default), `json`
// (one object per line), or a template with `{{.Field}}` placeholders,
// which the prefix `table ` turns into aligned columns under a header.
// docker's templates are Go templates, of which only the placeholders are
// supported here.

/** The fields a template may name, with their column headers. */
const FIELDS = {
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  ID: 'IMAGE ID',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
} as const;

type Field = keyof typeof FIELDS;

const DEFAULT_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
const PLACEHOLDER = /\{\{\s*\.(\w+)\s*\}\}/g;
/** Spaces between two columns, as docker's tabwriter pads them. */
const COLUMN_GAP = 3;

/** Formats the rows of `image ls`, each line ending with a newline. Throws CliError for an unknown field. */
export function formatImageList(rows: ImageSummary[], format: string | undefined, now: number): string {
  const values = rows.map((row) => fieldValues(row, now));
  if (format === 'json' || format === '{{json .}}') return values.map((value) => `${JSON.stringify(value)}\n`).join('');

  const template = format === undefined || format === 'table' ? DEFAULT_TABLE : format;
  const table = template.startsWith('table ');
  const body = table ? template.slice('table '.length) : template;
  checkFields(body);

  const lines = values.map((value) => fill(body, (field) => value[field]));
  if (!table) return lines.map((line) => `${line}\n`).join('');
  return alignColumns([fill(body, (field) => FIELDS[field]), ...lines]);
}

function fieldValues(row: ImageSummary, now: number): Record<Field, string> {
  return {
    Repository: row.repository,
    Tag: row.tag,
    ID: shortId(row.id),
    CreatedSince: timeAgo(row.created, now),
    CreatedAt: createdAt(row.created),
    Size: humanSize(row.size),
  };
}

function checkFields(template: string): void {
  for (const [, name] of template.matchAll(PLACEHOLDER)) {
    if (name !== undefined && !(name in FIELDS)) {
      throw new CliError(`invalid --format: unknown field {{.${name}}}: use ${Object.keys(FIELDS).join(', ')}, or json`);
    }
  }
}

function fill(template: string, value: (field: Field) => string): string {
  return template.replace(PLACEHOLDER, (_match, name: string) => value(name as Field));
}

// Cells are separated by tabs in the template, as for docker's tabwriter.
function alignColumns(lines: string[]): string {
  const cells = lines.map((line) => line.split('\t'));
  const widths: number[] = [];
  for (const row of cells) {
    for (const [column, cell] of row.entries()) widths[column] = Math.max(widths[column] ?? 0, cell.length);
  }

  return cells
    .map((row) => `${row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd((widths[column] ?? 0) + COLUMN_GAP))).join('')}\n`)
    .join('');
}

// docker prints CreatedAt with Go's time.String(): `2024-01-02 03:04:05 +0000 UTC`.
function createdAt(created: string | undefined): string {
  const time = created === undefined ? Number.NaN : Date.parse(created);
  if (Number.isNaN(time)) return 'N/A';
  return `${new Date(time).toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}
