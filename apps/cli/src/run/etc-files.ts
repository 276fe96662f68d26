import { readFileSync, writeFileSync } from 'node:fs';

// Every container with its own root gets /etc/hostname, /etc/hosts and
// /etc/resolv.conf written for it and bound in, as docker does. The
// container's network namespace has only a loopback interface, so /etc/hosts
// maps its hostname to the loopback address.

/** Name servers docker writes when the host's resolv.conf has none that a container can reach. */
const FALLBACK_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];

/** The generated files: a name under /etc and its host path in the container's directory. */
export interface EtcFile {
  name: 'hostname' | 'hosts' | 'resolv.conf';
  path: string;
}

/** Writes the three files into `dir` and returns them. */
export function writeEtcFiles(dir: string, hostname: string, hostResolvConf = '/etc/resolv.conf'): EtcFile[] {
  const files: [EtcFile['name'], string][] = [
    ['hostname', `${hostname}\n`],
    ['hosts', hostsFile(hostname)],
    ['resolv.conf', resolvConf(readOptional(hostResolvConf))],
  ];
  return files.map(([name, content]) => {
    const path = `${dir}/${name}`;
    writeFileSync(path, content, { mode: 0o644 });
    return { name, path };
  });
}

export function hostsFile(hostname: string): string {
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    `127.0.0.1\t${hostname}`,
    '',
  ].join('\n');
}

/**
 * Returns the host's resolv.conf without name servers on loopback
 * addresses, which mean the host itself (a local resolver such as
 * systemd-resolved at 127.0.0.53) and are unreachable from the container's
 * own network namespace. When none remain, docker's fallback servers are
 * written, as docker does.
 */
export function resolvConf(hostText: string): string {
  const lines = hostText.split('\n').filter((line) => !isLoopbackNameserver(line));
  const hasNameserver = lines.some((line) => /^\s*nameserver\s/.test(line));
  if (!hasNameserver) lines.push(...FALLBACK_NAMESERVERS.map((address) => `nameserver ${address}`));
  return `${lines.filter((line, index) => line !== '' || index < lines.length - 1).join('\n')}\n`;
}

function isLoopbackNameserver(line: string): boolean {
  const match = /^\s*nameserver\s+(\S+)/.exec(line);
  if (match === null) return false;
  const address = match[1] as string;
  return address.startsWith('127.') || address === '::1';
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
