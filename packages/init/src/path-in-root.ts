import { close, EEXIST, ENOENT, isDirectory, mkdir, O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY, openFile, readlink, SyscallError } from '@m-docker/syscalls';

// The init creates mount points inside the container's root before
// pivot_root, while the host's file system is still reachable. A path
// such as /data in an image where /data is a symbolic link to /etc must
// then lead to <root>/etc, never to the host's /etc: every symbolic link is
// resolved as if <root> were /, and `..` stops at <root>. Nothing else runs
// in the container's mount namespace yet, so nothing can swap a directory
// for a link between the check and the use.

/** Symbolic links followed in one path before giving up, as Linux's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;


/** Error for a path that cannot be resolved inside the root, such as a symbolic link loop. */
export class PathInRootError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'PathInRootError';
  }
}

/**
 * Returns the host path of `path` inside `root`, with every symbolic link
 * of the existing components resolved inside `root`. Components that do
 * not exist are appended as they are.
 */
export function resolveInRoot(root: string, path: string): string {
  const resolved: string[] = [];
  const pending = path.split('/').reverse();
  let links = 0;

  while (pending.length > 0) {
    const component = pending.pop() as string;
    if (component === '' || component === '.') continue;
    if (component === '..') {
      resolved.pop();
      continue;
    }

    const candidate = `${root}/${[...resolved, component].join('/')}`;
    const target = readLinkIfExists(candidate);
    if (target === undefined) {
      resolved.push(component);
      continue;
    }

    links += 1;
    if (links > MAX_SYMLINKS) {
      throw new PathInRootError(path, `too many levels of symbolic links in ${path} inside the container`);
    }
    if (target.startsWith('/')) resolved.length = 0;
    pending.push(...target.split('/').reverse());
  }
  return resolved.length === 0 ? root : `${root}/${resolved.join('/')}`;
}

/** Creates `hostPath` and its missing parents as directories; the path must come from resolveInRoot. */
export function makeDirectories(root: string, hostPath: string): void {
  const relative = hostPath.slice(root.length).split('/').filter(Boolean);
  let current = root;
  for (const component of relative) {
    current = `${current}/${component}`;
    try {
      mkdir(current, 0o755);
    } catch (error) {
      if (!(SyscallError.isInstance(error) && error.code === 'EEXIST')) throw error;
    }
  }
  if (!isDirectory(hostPath)) {
    throw new PathInRootError(hostPath, `${hostPath.slice(root.length)} exists in the container and is not a directory`);
  }
}

/** Creates an empty file at `hostPath` unless one exists, for a bind mount of a file; parents are created first. */
export function makeFile(root: string, hostPath: string): void {
  const parent = hostPath.slice(0, hostPath.lastIndexOf('/'));
  makeDirectories(root, parent.length < root.length ? root : parent);
  let fd: number;
  try {
    // O_EXCL: an existing entry, even a FIFO that open(2) would block on, is kept.
    fd = openFile(hostPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  } catch (error) {
    if (SyscallError.isInstance(error) && error.errno === EEXIST) return;
    throw error;
  }
  close(fd);
}

function readLinkIfExists(path: string): string | undefined {
  try {
    return readlink(path);
  } catch (error) {
    if (SyscallError.isInstance(error) && error.errno === ENOENT) return undefined;
    throw error;
  }
}
