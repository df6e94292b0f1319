// The config benchmark on Node: compiled by the section with tests/_lib
// mapped to the built package; prints the result as one JSON line.

import { runConfigBench } from "./bench.ts";

console.log(JSON.stringify(runConfigBench()));
