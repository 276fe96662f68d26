// Plain-text tables for the benchmark report.

/** Formats milliseconds with one decimal, or a dash when there is no value. */
export function ms(value) {
  return value === undefined ? '-' : value.toFixed(1);
}

/** Formats a size in KiB as MiB with one decimal. */
export function mebibytes(kib) {
  return kib === undefined ? '-' : `${(kib / 1024).toFixed(1)} MiB`;
}

/** Formats a byte count in the largest binary unit that fits: 1 KiB, 64 MiB, or 64 MiB - 8 B just below it. */
export function byteSize(bytes) {
  for (const [unit, size] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ]) {
    const whole = Math.round(bytes / size);
    if (whole < 1) continue;
    if (bytes === whole * size) return `${whole} ${unit}`;
    const shortfall = whole * size - bytes;
    if (shortfall > 0 && shortfall < 1024) return `${whole} ${unit} - ${shortfall} B`;
  }
  return `${bytes} B`;
}

/**
 * Lays out rows as columns. `columns` lists `{ title, align }` with align
 * 'left' or 'right'; every row is an array of strings, one per column.
 */
export function table(columns, rows) {
  const widths = columns.map((column, index) => Math.max(column.title.length, ...rows.map((row) => String(row[index]).length)));
  const line = (cells) =>
    cells
      .map((cell, index) => (columns[index].align === 'right' ? String(cell).padStart(widths[index]) : String(cell).padEnd(widths[index])))
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.title)), ...rows.map(line)].join('\n');
}
