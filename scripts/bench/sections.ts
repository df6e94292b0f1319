// The sections of BENCHMARKS.md, in the order they run and appear. To add
// one: write a module exporting a Section (scripts/bench/_section.ts: an id,
// a run() that measures and a render() that writes its Markdown; options
// named `--ID-...`, npm packages it needs), usually in a folder of its own
// beside these, and list it here.

import type { Section } from "./_section.ts";
import { coldStartSection } from "./cold_start/section.ts";
import { configSection } from "./config/section.ts";
import { listenFdsSection } from "./listen_fds/section.ts";
import { notifySection } from "./notify/section.ts";
import { restartSection } from "./restart/section.ts";
import { serveSection } from "./serve/section.ts";

/** Every section, in order. */
export const SECTIONS: readonly Section[] = [
  listenFdsSection,
  notifySection,
  coldStartSection,
  serveSection,
  restartSection,
  configSection,
];
