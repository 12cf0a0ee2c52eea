// The grammars the live panel bundles: the most common languages in replies, small enough for the panel's budget
// (its ESM goes whole to every view; docs/performance.md has the sizes). The saved-turn renderer loads a longer
// list lazily (labextension/src/languages.js); a block in another language stays plain while it streams.
import bash from "highlight.js/lib/languages/bash";
import diff from "highlight.js/lib/languages/diff";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

export const LIVE_LANGUAGES = Object.fromEntries(
  Object.entries({ bash, diff, javascript, json, python, xml, yaml }).map(([name, grammar]) => [name, () => grammar]),
);
