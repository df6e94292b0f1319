// Integer parsing exactly as libsystemd 252 does it (src/basic/parse-util.c):
// safe_atoi() for LISTEN_FDS, parse_pid() for LISTEN_PID and safe_atou64()
// for LISTEN_PIDFDID. They wrap glibc's strtol()/strtoull() with base 0, so
// "0x" means hex and a leading "0" octal, plus Python's "0b" and "0o" added
// by mangle_base(). Every quirk below is checked against the real library by
// tests/differential_test.ts.

import { EINVAL, ERANGE } from "./_errno.ts";

/** A parsed integer, or the errno libsystemd returns for that text. */
export type ParsedInt =
  | { readonly ok: true; readonly value: bigint }
  | { readonly ok: false; readonly errno: number };

// systemd's WHITESPACE, skipped by safe_ato*() before mangle_base().
const SYSTEMD_WHITESPACE = " \t\n\r";
// isspace() in the C locale, skipped again by strtol() itself.
const C_SPACE = " \t\n\v\f\r";

const LONG_MAX = (1n << 63n) - 1n;
const ULONG_MAX = (1n << 64n) - 1n;
const INT_MIN = -(1n << 31n);
const INT_MAX = (1n << 31n) - 1n;

function skip(text: string, start: number, chars: string): number {
  let i = start;
  while (i < text.length && chars.includes(text[i]!)) i++;
  return i;
}

// mangle_base(): "0b"/"0B" select base 2 and "0o"/"0O" base 8; otherwise
// strtol() picks the base itself.
function mangleBase(text: string, start: number): [number, number] {
  const prefix = text.slice(start, start + 2).toLowerCase();
  if (prefix === "0b") return [2, start + 2];
  if (prefix === "0o") return [8, start + 2];
  return [0, start];
}

function digitValue(char: string): number {
  const code = char.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 122) return code - 87; // a-z
  if (code >= 65 && code <= 90) return code - 55; // A-Z
  return 99;
}

interface Strto {
  /** The value strtol()/strtoull() returns (clamped on overflow). */
  value: bigint;
  /** Whether errno was set to ERANGE. */
  overflow: boolean;
  /** Whether the text was consumed to its end (`*endptr == 0`) with digits. */
  complete: boolean;
}

// glibc's strtol() (signed) and strtoull() (unsigned, 64-bit) from `start`.
function strto(
  text: string,
  start: number,
  base: number,
  signed: boolean,
): Strto {
  let i = skip(text, start, C_SPACE);
  let negative = false;
  if (text[i] === "-" || text[i] === "+") {
    negative = text[i] === "-";
    i++;
  }
  if (text[i] === "0") {
    if ((base === 0 || base === 16) && text[i + 1]?.toLowerCase() === "x") {
      // "0x" with no hex digit after it converts the "0" and stops at the
      // "x": either way the text is not complete.
      if (digitValue(text[i + 2] ?? "") >= 16) {
        return { value: 0n, overflow: false, complete: false };
      }
      i += 2;
      base = 16;
    } else if (base === 0) {
      base = 8;
    }
  } else if (base === 0) {
    base = 10;
  }
  const digitsStart = i;
  let magnitude = 0n;
  const bigBase = BigInt(base);
  while (i < text.length) {
    const digit = digitValue(text[i]!);
    if (digit >= base) break;
    magnitude = magnitude * bigBase + BigInt(digit);
    i++;
  }
  const complete = i > digitsStart && i === text.length;
  if (signed) {
    const limit = negative ? LONG_MAX + 1n : LONG_MAX;
    if (magnitude > limit) {
      return { value: negative ? -limit : limit, overflow: true, complete };
    }
    return {
      value: negative ? -magnitude : magnitude,
      overflow: false,
      complete,
    };
  }
  if (magnitude > ULONG_MAX) {
    return { value: ULONG_MAX, overflow: true, complete };
  }
  const value = negative && magnitude !== 0n
    ? ULONG_MAX + 1n - magnitude
    : magnitude;
  return { value, overflow: false, complete };
}

/** safe_atoi(): a C `int`, as LISTEN_FDS is read. */
export function parseInt32(text: string): ParsedInt {
  const [base, start] = mangleBase(text, skip(text, 0, SYSTEMD_WHITESPACE));
  const { value, overflow, complete } = strto(text, start, base, true);
  if (overflow) return { ok: false, errno: ERANGE };
  if (!complete) return { ok: false, errno: EINVAL };
  if (value < INT_MIN || value > INT_MAX) return { ok: false, errno: ERANGE };
  return { ok: true, value };
}

/** safe_atou64(): an unsigned 64-bit integer, as LISTEN_PIDFDID is read. */
export function parseUint64(text: string): ParsedInt {
  const [base, start] = mangleBase(text, skip(text, 0, SYSTEMD_WHITESPACE));
  const { value, overflow, complete } = strto(text, start, base, false);
  if (overflow) return { ok: false, errno: ERANGE };
  if (!complete) return { ok: false, errno: EINVAL };
  // strtoull() accepts "-5" as 2^64-5; libsystemd refuses a minus sign, but
  // only one right after the skipped whitespace and base prefix.
  if (value !== 0n && text[start] === "-") return { ok: false, errno: ERANGE };
  return { ok: true, value };
}

/** parse_pid(): a positive `pid_t`, as LISTEN_PID is read. */
export function parsePid(text: string): ParsedInt {
  const parsed = parseUint64(text);
  if (!parsed.ok) return parsed;
  // (pid_t) must round-trip and pid_is_valid() wants it positive.
  if (parsed.value < 1n || parsed.value > INT_MAX) {
    return { ok: false, errno: ERANGE };
  }
  return parsed;
}
