// Linux's errno numbers the tests expect, written out here rather than taken
// from the library under test (src/_errno.ts), so that a wrong number there
// fails a test.

export const ENOENT = 2;
export const E2BIG = 7;
export const EBADF = 9;
export const EAGAIN = 11;
export const EINVAL = 22;
export const ERANGE = 34;
export const ENAMETOOLONG = 36;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
