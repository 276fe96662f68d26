import { DEFAULT_CAPABILITIES } from '@m-docker/ipc';
import { CAPABILITIES, type CapabilityName, capabilityMask, capabilityNames, isCapabilityName, readBoundingSet } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';

// --cap-add, --cap-drop and --privileged, as docker has them. The CLI
// normalizes the names as docker's client does: upper case, a CAP_ prefix
// unless the value is ALL, no duplicates, sorted, and a capability in both
// lists only added. The container's record keeps them, and `inspect` shows
// them as HostConfig.CapAdd and CapDrop. The container's set follows
// docker's daemon (moby's oci/caps TweakCapabilities):
//
//   --privileged            every capability; the lists are ignored
//   --cap-add ALL           every capability but those of --cap-drop
//   --cap-drop ALL          exactly those of --cap-add
//   otherwise               docker's default set, minus --cap-drop, plus --cap-add
//
// "Every capability" is every one that m-docker itself has: the init and
// exec limit the set to their own bounding set.

/** The capability options of one container, normalized as docker's HostConfig stores them. */
export interface CapabilityOptions {
  /** --cap-add: names such as `CAP_NET_ADMIN`, sorted, or `['ALL']`. */
  capAdd: string[];
  /** --cap-drop: names such as `CAP_NET_RAW`, sorted, or `['ALL']`, without those of capAdd. */
  capDrop: string[];
  privileged: boolean;
}

/** The value of --cap-add and --cap-drop that stands for every capability. */
export const ALL_CAPABILITIES = 'ALL';

/**
 * Normalizes and checks --cap-add and --cap-drop. Throws a CliError (status
 * 125) for an unknown name, and for a --cap-add of a capability that is not
 * in `available`, m-docker's own bounding set, because no container of
 * this m-docker can get it.
 */
export function parseCapabilityOptions(
  add: readonly string[],
  drop: readonly string[],
  privileged: boolean,
  available: bigint = readBoundingSet(),
): CapabilityOptions {
  const addNames = normalizeNames('--cap-add', add);
  const dropNames = normalizeNames('--cap-drop', drop);
  if (!privileged) checkAvailable(add, addNames, available);

  return {
    capAdd: addNames,
    capDrop: dropNames.filter((name) => !addNames.includes(name)),
    privileged,
  };
}

/** Returns the capabilities of a container with `options`, in the order of their numbers. */
export function containerCapabilities(options: CapabilityOptions): CapabilityName[] {
  const every = Object.keys(CAPABILITIES) as CapabilityName[];
  const add = options.capAdd.filter(isCapabilityName);
  const drop = options.capDrop.filter(isCapabilityName);

  let names: CapabilityName[];
  if (options.privileged) {
    names = every;
  } else if (options.capAdd.includes(ALL_CAPABILITIES)) {
    names = every.filter((name) => !drop.includes(name));
  } else if (options.capDrop.includes(ALL_CAPABILITIES)) {
    names = add;
  } else {
    names = [...DEFAULT_CAPABILITIES.filter((name) => !drop.includes(name)), ...add];
  }
  return capabilityNames(capabilityMask(names));
}

/**
 * Returns the set that `m-docker exec` gives its command: the container's,
 * or undefined with --privileged on either run or exec, which leaves the
 * command every capability that m-docker has.
 */
export function execCapabilities(options: CapabilityOptions, privileged: boolean): bigint | undefined {
  if (privileged || options.privileged) return undefined;
  return capabilityMask(containerCapabilities(options));
}

// docker accepts `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` alike. ALL
// makes the other names of the same list redundant.
function normalizeNames(option: string, values: readonly string[]): string[] {
  const names = new Set<string>();
  for (const value of values) {
    if (value.trim() === '') {
      throw new CliError(`invalid ${option} ${JSON.stringify(value)}: the value is empty: give a capability name such as NET_ADMIN, or ALL`);
    }
    const upper = value.trim().toUpperCase();
    const name = upper === ALL_CAPABILITIES || upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
    if (name !== ALL_CAPABILITIES && !isCapabilityName(name)) {
      throw new CliError(
        `invalid ${option} ${JSON.stringify(value)}: unknown capability ${name}: give a name from capabilities(7), with or without CAP_, such as NET_ADMIN, or ALL`,
      );
    }
    names.add(name);
  }
  if (names.has(ALL_CAPABILITIES)) return [ALL_CAPABILITIES];
  return [...names].sort();
}

function checkAvailable(values: readonly string[], names: readonly string[], available: bigint): void {
  const missing = names.filter(isCapabilityName).find((name) => (capabilityMask([name]) & available) === 0n);
  if (missing === undefined) return;

  const given = values.find((value) => `CAP_${value.trim().toUpperCase().replace(/^CAP_/, '')}` === missing) ?? missing;
  throw new CliError(
    `invalid --cap-add ${JSON.stringify(given)}: m-docker itself lacks ${missing} (its bounding set does not contain it), so no container can get it: leave it out, or run m-docker with that capability`,
  );
}
