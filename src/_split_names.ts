// LISTEN_FDNAMES is split by libsystemd with strv_split_full(…, ":",
// EXTRACT_DONT_COALESCE_SEPARATORS): a backslash takes the next character
// literally (no C escapes, so "\x41" is "x41"), quotes are plain characters,
// empty fields are kept, and a lone backslash at the end is -EINVAL.

/** The names, or `undefined` for a trailing lone backslash (EINVAL). */
export function splitFdNames(text: string): string[] | undefined {
  const names: string[] = [];
  let current = "";
  let escaped = false;
  for (const char of text) {
    if (escaped) {
      current += char;
      escaped = false;
    } else if (char === "\\") {
      escaped = true;
    } else if (char === ":") {
      names.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  if (escaped) return undefined;
  names.push(current);
  return names;
}
