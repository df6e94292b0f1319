// Node has no HTTP engine but node:http: serve() always uses it there. The
// Deno build has _http_native.deno.ts instead.

import type { NativeHttp } from "./_http_native_types.ts";

/** Always `undefined` on Node: serve() answers through node:http. */
export function nativeHttp(): NativeHttp | undefined {
  return undefined;
}
