// Sizes and ages as `docker images` prints them. docker formats both with
// its go-units package: sizes with HumanSizeWithPrecision(size, 3), in
// decimal units, and ages with HumanDuration plus " ago".

const SIZE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const;

/** Formats a byte count with 3 significant digits in decimal units: `4.26MB`, `880kB`, `0B`. */
export function humanSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < SIZE_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  // toPrecision(3) rounds 999.6 up to 1000, which is the next unit.
  let rounded = Number(value.toPrecision(3));
  if (rounded >= 1000 && unit < SIZE_UNITS.length - 1) {
    rounded = Number((rounded / 1000).toPrecision(3));
    unit++;
  }
  return `${rounded}${SIZE_UNITS[unit]}`;
}

const HOUR_MS = 3_600_000;

/** Describes a duration in ms roughly, as go-units' HumanDuration: `Less than a second`, `About an hour`, `2 days`, `6 weeks`. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;

  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;

  const hours = Math.floor(ms / HOUR_MS + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(Math.floor(ms / HOUR_MS) / 24 / 365)} years`;
}

/** Returns `2 days ago` for an RFC 3339 time, or `N/A` when there is none or it does not parse. */
export function timeAgo(created: string | undefined, now: number): string {
  const time = created === undefined ? Number.NaN : Date.parse(created);
  return Number.isNaN(time) ? 'N/A' : `${humanDuration(now - time)} ago`;
}

/** Returns the first 12 hex digits of a `sha256:<hex>` id, as docker shows ids. */
export function shortId(id: string): string {
  return id.slice(id.indexOf(':') + 1, id.indexOf(':') + 13);
}
