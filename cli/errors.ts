// What the CLI prints when a command fails: file errors name the path, what was being done and the cause in plain
// words (never a bare "ENOSPC: no space left on device, write"); an interrupt carries its exit status.

/** Node's errno codes in plain words. */
const ERRNO_WORDS: Record<string, string> = {
  ENOSPC: 'disk full',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  EEXIST: 'it already exists',
  ENOTEMPTY: 'the directory is not empty',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EIO: 'input/output error',
  ENAMETOOLONG: 'the name is too long',
  EBUSY: 'the file is busy',
  EXDEV: 'a rename across file systems',
  ELOOP: 'too many symbolic links',
  EFBIG: 'the file is too large',
};

/** A Node fs error (it has an errno `code`; `path` when the call had one). */
export interface FsError extends Error {
  code: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

export function isFsError(err: unknown): err is FsError {
  return err instanceof Error && typeof (err as FsError).code === 'string' && /^E[A-Z]+$/.test((err as FsError).code);
}

/** "disk full: ENOSPC" — the cause of a file error in plain words with its code. */
export function errnoWords(code: string): string {
  const words = ERRNO_WORDS[code];
  return words ? `${words}: ${code}` : code;
}

/** A file error that already says which path and which phase. */
export class FileError extends Error {
  constructor(message: string, readonly code: string, readonly path: string) {
    super(message);
    this.name = 'FileError';
  }
}

/** `cannot <action> <path> (<cause>)`: `action` is the phase ("write checkpoint", "append to"), `path` what the
 *  user knows (a checkpoint directory rather than the temporary file inside it); the failing file is added when
 *  it is a different one. */
export function fileError(err: FsError, action: string, path?: string): FileError {
  const where = path ?? err.path ?? '(unknown path)';
  const inner = err.path && path && err.path !== path ? `; failed on ${err.path}` : '';
  return new FileError(`cannot ${action} ${where} (${errnoWords(err.code)}${inner})`, err.code, where);
}

/** Runs `fn`, turning a file error into one that names `action` and `path`. */
export async function withFileContext<T>(action: string, path: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isFsError(err)) throw fileError(err, action, path);
    throw err;
  }
}

/** withFileContext for synchronous writes. */
export function withFileContextSync<T>(action: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isFsError(err)) throw fileError(err, action, path);
    throw err;
  }
}

/** The verb of a syscall, for a file error that reached the top without context. */
function syscallAction(syscall: string | undefined): string {
  switch (syscall) {
    case 'open': return 'open';
    case 'read': return 'read';
    case 'write': return 'write';
    case 'mkdir': return 'create directory';
    case 'rename': return 'rename';
    case 'rmdir':
    case 'unlink':
    case 'rm': return 'remove';
    case 'scandir': return 'list directory';
    case 'stat':
    case 'lstat': return 'read';
    default: return syscall ? `${syscall}` : 'access';
  }
}

/** The run was interrupted (SIGINT / SIGTERM): the message says how to resume, `exitCode` is 128 + the signal. */
export class Interrupted extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
    this.name = 'Interrupted';
  }
}

/** Exit status of a process ended by a signal, as shells report it (128 + signal number). */
export const SIGNAL_EXIT_CODE = { SIGINT: 130, SIGTERM: 143 } as const;

/** The one line (after "dapo: ") and the exit status for an error that ends a command. */
export function describeFailure(err: unknown): { message: string; exitCode: number } {
  if (err instanceof Interrupted) return { message: err.message, exitCode: err.exitCode };
  if (isFsError(err) && !(err instanceof FileError)) {
    const where = err.path ? ` ${err.path}${err.dest ? ` → ${err.dest}` : ''}` : '';
    return { message: `cannot ${syscallAction(err.syscall)}${where} (${errnoWords(err.code)})`, exitCode: 1 };
  }
  return { message: err instanceof Error ? err.message : String(err), exitCode: 1 };
}
