// Section 5 of the `pnpm bench` report: the image rows.
import { RUNC_LABEL, runLabel } from './benchmarks.mjs';
import { byteSize, ms, table } from './format.mjs';
import { IMAGE_NAME, imageCombinations, imageRunLabel, imageTimelineKey, RUNC_IMAGE_LABEL } from './images.mjs';
import { summarize } from './measure.mjs';
import { formatTimeline } from './report.mjs';

const MIB = 1024 * 1024;

/** Indents every line of a block by three spaces, for text under a section heading. */
function indent(text) {
  return text.replace(/^/gm, '   ');
}

// `4 files of 16 MiB in opt/payload/blobs, random bytes`
function describePart(part) {
  const content = { random: 'random bytes', text: 'text', mixed: 'alternately random bytes and text' }[part.content];
  return `${part.count} files of ${byteSize(part.size)} in ${part.dir}, ${content}`;
}

// `98.2 MiB` from 1 MiB up, `6 KiB` below.
function layerSize(bytes) {
  return bytes >= MIB ? `${(bytes / MIB).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

/**
 * Prints section 5: the run --image rows with their differences and
 * timeline, the clean-up checks, and the import times of the large image.
 * `mounts` is `{ before, after }`, the mount counts of this namespace, and
 * `leftovers` lists the container directories left in the run store.
 */
export function printImages({ images, payloadParts, combinations, latencies, timelines, imports, mainRunc, runs, mounts, leftovers }) {
  console.log('5. Images (built by scripts/test-images/build-test-images.mjs in the scratch directory)');
  if (!images.available) {
    console.log(`   skipped: ${images.reason}`);
    console.log('');
    return;
  }
  const measured = imageCombinations(combinations);
  console.log(`   run --image: busybox-docker.tar, imported once into a store as ${IMAGE_NAME} (${images.busybox.configDigest.slice(0, 19)}…).`);
  console.log("   runc's bundle: busybox-rootfs.tar, the same two layers flattened, extracted by tar, with a writable root.");
  console.log('');

  console.log(`   Latency of run --image (ms, wall clock from spawn to exit), ${runs} runs each in the rounds of section 1:`);
  const timing = (label) => {
    const stats = summarize(latencies.get(label));
    return [label, ms(stats.min), ms(stats.median), ms(stats.p90)];
  };
  const rows = measured.map((combination) => timing(imageRunLabel(combination.tag)));
  rows.push(images.runc.available ? timing(RUNC_IMAGE_LABEL) : [`runc: unavailable (${images.runc.reason})`, '-', '-', '-']);
  const columns = [
    { title: 'command', align: 'left' },
    { title: 'min', align: 'right' },
    { title: 'median', align: 'right' },
    { title: 'p90', align: 'right' },
  ];
  console.log(indent(table(columns, rows)));
  console.log('');

  console.log('   Differences and ratios of medians (estimates: each carries the noise of two rows):');
  console.log(indent(table(DIFFERENCE_COLUMNS, differenceRows({ measured, latencies, images, mainRunc }))));
  console.log('');

  const timelineColumns = measured
    .map((combination) => ({ key: imageTimelineKey(combination.tag), title: `${combination.cli}/${combination.init}` }))
    .filter((column) => timelines.has(column.key));
  console.log(`   Phase timeline of ./m-docker --debug run --rm --image ${IMAGE_NAME} /bin/true (${runs} runs per column, same rounds):`);
  console.log(indent(formatTimeline(timelineColumns, timelines)));
  console.log('   Times are ms on the CLI\'s clock, as in section 2. "root prepared" ends the CLI\'s work on the image root:');
  console.log('   resolving the image, creating the container directory with its /etc files, before the config is sent.');
  console.log('');

  const mountCheck = mounts.before === mounts.after ? 'same' : 'CHANGED';
  console.log(`   clean-up: ${leftovers.length} container directories left in the store after the --rm runs.`);
  console.log(`   Mounts in this mount namespace: ${mounts.before} before the benchmark, ${mounts.after} now (${mountCheck}).`);
  console.log('');

  printImports({ images, payloadParts, imports });
}

const DIFFERENCE_COLUMNS = [
  { title: 'part', align: 'left' },
  { title: 'computed as', align: 'left' },
  { title: 'value', align: 'right' },
];

function differenceRows({ measured, latencies, images, mainRunc }) {
  const median = (label) => summarize(latencies.get(label)).median;
  const rows = [];
  for (const combination of measured) {
    const image = median(imageRunLabel(combination.tag));
    rows.push([`[${combination.tag}] cost of the image root`, 'run --image - run (host root, section 1)', `${ms(image - median(runLabel(combination.tag)))} ms`]);
    if (images.runc.available) {
      rows.push([`[${combination.tag}] against runc`, 'run --image / runc run (image rootfs)', (image / median(RUNC_IMAGE_LABEL)).toFixed(2)]);
    }
  }
  if (images.runc.available && mainRunc.available) {
    rows.push(['runc: the image rootfs', 'runc (image rootfs) - runc (busybox bundle)', `${ms(median(RUNC_IMAGE_LABEL) - median(RUNC_LABEL))} ms`]);
  }
  return rows;
}

function printImports({ images, payloadParts, imports }) {
  const { large } = images;
  const runs = imports.rows.length > 0 ? imports.times.get(imports.rows[0].label).length : 0;
  const layerSizes = large.layerBytes.map(layerSize).join(' + ');
  console.log(`   Import of a ${(large.dockerArchiveBytes / MIB).toFixed(1)} MiB image (s, wall clock), ${runs} runs per row, interleaved, each into a new store`);
  console.log(`   image ${large.configDigest.slice(0, 19)}…, layers ${layerSizes}: busybox, its upper layer, and a payload of ${large.payloadFiles} files:`);
  for (const part of payloadParts) console.log(`     ${describePart(part)}`);
  console.log(`   large-docker.tar.gz: ${(large.dockerArchiveGzBytes / MIB).toFixed(1)} MiB, gzip at zlib's default level.`);
  console.log('   MiB/s: the uncompressed docker save archive (for the tar floor, the three layer tars) over the median time.');
  console.log("   user, sys: median CPU seconds of the command and its children, from this process's cutime and cstime.");
  console.log(`   store and tar's target: ${imports.storeFilesystem}`);

  const seconds = (value) => (value / 1000).toFixed(2);
  const rows = imports.rows.map((row) => {
    const stats = summarize(imports.times.get(row.label));
    const cpu = imports.cpu.get(row.label);
    const userMs = summarize(cpu.map((run) => run.userMs)).median;
    const systemMs = summarize(cpu.map((run) => run.systemMs)).median;
    const rate = (row.rateBytes / MIB / (stats.median / 1000)).toFixed(1);
    return [row.label, seconds(stats.min), seconds(stats.median), seconds(stats.max), rate, seconds(userMs), seconds(systemMs)];
  });
  if (imports.floorSkipped) rows.push([`tar floor: skipped, ${imports.floorSkipped}`, '-', '-', '-', '-', '-', '-']);
  const columns = [
    { title: 'command', align: 'left' },
    { title: 'min', align: 'right' },
    { title: 'median', align: 'right' },
    { title: 'max', align: 'right' },
    { title: 'MiB/s', align: 'right' },
    { title: 'user', align: 'right' },
    { title: 'sys', align: 'right' },
  ];
  console.log(indent(table(columns, rows)));
  console.log('');
}
