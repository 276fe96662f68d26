import type { UserConfig } from '@m-docker/ipc';
import { readTextFile, SyscallError } from '@m-docker/syscalls';

// `-u` is resolved inside the container, from the image's /etc/passwd and
// /etc/group, with the rules runc and docker use: a name must exist, a
// number need not (it then gets gid 0 and home /), a group given after ':'
// replaces the primary group and the supplementary ones, and without it the
// supplementary groups are the primary one plus those that list the user's
// name as a member.

/** The user the command runs as, resolved. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary group ids for setgroups(2). */
  groups: number[];
  home: string;
}

/** Error for a user or group that the container's files do not define. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Bytes read of /etc/passwd or /etc/group at most; larger files are cut. */
const ACCOUNT_FILE_MAX = 4 * 1024 * 1024;

/** Largest id Linux accepts; (uid_t)-1 is reserved. */
const ID_MAX = 0xfffffffe;

/**
 * Resolves `user.spec` against /etc/passwd and /etc/group below `root`: the
 * current root (the container's, after pivot_root) by default, or a path
 * such as /proc/PID/root from outside the container.
 */
export function resolveUser(user: Pick<UserConfig, 'spec'>, root = ''): ResolvedUser {
  const [userPart = '', groupPart] = splitSpec(user.spec);
  const passwd = parsePasswd(readAccountFile(`${root}/etc/passwd`));
  const entry = findUser(passwd, userPart);

  const resolved: ResolvedUser =
    entry === undefined
      ? { uid: parseId(userPart, 'user', user.spec), gid: 0, groups: [], home: '/' }
      : { uid: entry.uid, gid: entry.gid, groups: [], home: entry.home };

  const groups = parseGroups(readAccountFile(`${root}/etc/group`));
  if (groupPart !== undefined) {
    resolved.gid = findGroup(groups, groupPart, user.spec);
    resolved.groups = [resolved.gid];
  } else if (entry !== undefined) {
    // The primary group comes first, as initgroups(3) lists it for a login.
    const members = groups.filter((group) => group.members.includes(entry.name)).map((group) => group.gid);
    resolved.groups = [...new Set([entry.gid, ...members])];
  }
  return resolved;
}

/** Returns `env` with HOME set to `home`, replacing an earlier HOME. */
export function withHome(env: readonly string[], home: string): string[] {
  return [...env.filter((entry) => !entry.startsWith('HOME=')), `HOME=${home}`];
}

function splitSpec(spec: string): [string, string | undefined] {
  const colon = spec.indexOf(':');
  if (colon === -1) return [spec, undefined];
  return [spec.slice(0, colon), spec.slice(colon + 1)];
}

function findUser(passwd: PasswdEntry[], name: string): PasswdEntry | undefined {
  const numeric = /^\d+$/.test(name);
  const entry = passwd.find((candidate) => (numeric ? candidate.uid === Number(name) : candidate.name === name));
  if (entry === undefined && !numeric) {
    throw new UserError(`user ${JSON.stringify(name)} not found in the container's /etc/passwd: give a name it lists or a numeric uid`);
  }
  return entry;
}

function findGroup(groups: GroupEntry[], name: string, spec: string): number {
  if (/^\d+$/.test(name)) return parseId(name, 'group', spec);
  const group = groups.find((candidate) => candidate.name === name);
  if (group === undefined) {
    throw new UserError(`group ${JSON.stringify(name)} not found in the container's /etc/group: give a name it lists or a numeric gid`);
  }
  return group.gid;
}

function parseId(text: string, kind: 'user' | 'group', spec: string): number {
  const id = Number(text);
  if (!/^\d+$/.test(text) || id > ID_MAX) {
    throw new UserError(`invalid ${kind} in ${JSON.stringify(spec)}: expected a name or a number from 0 to ${ID_MAX}`);
  }
  return id;
}

// A missing file means no entries, as in an image without /etc/passwd.
function readAccountFile(path: string): string {
  try {
    return readTextFile(path, ACCOUNT_FILE_MAX);
  } catch (error) {
    if (SyscallError.isInstance(error) && error.code === 'ENOENT') return '';
    throw error;
  }
}

// passwd(5): name:password:UID:GID:GECOS:directory:shell
function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const fields of accountLines(text)) {
    const [name = '', , uid = '', gid = '', , home = ''] = fields;
    if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) continue;
    entries.push({ name, uid: Number(uid), gid: Number(gid), home: home || '/' });
  }
  return entries;
}

// group(5): name:password:GID:member,member
function parseGroups(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const fields of accountLines(text)) {
    const [name = '', , gid = '', members = ''] = fields;
    if (!/^\d+$/.test(gid)) continue;
    entries.push({ name, gid: Number(gid), members: members.split(',').filter(Boolean) });
  }
  return entries;
}

function accountLines(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
}
