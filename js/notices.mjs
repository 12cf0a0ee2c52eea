// Third-party notices: the full licence text of every npm package a bundle contains, written beside that bundle
// (elk_jupyter/static/THIRD_PARTY_NOTICES.txt for the panel, elk_jupyter/labextension/THIRD_PARTY_NOTICES.txt for the
// renderer). The minified bundles carry no licence comments, and MIT, BSD-3-Clause and Apache-2.0 each ask that the
// notice travel with the code. `node js/notices.mjs labextension` writes the renderer's, from the package list
// @jupyterlab/builder's license plugin leaves in static/third-party-licenses.json (its texts there are empty);
// js/build.mjs writes the panel's from esbuild's metafile.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const LICENCE_FILE = /^(licen[cs]e|notice|copying)/i;
const RULE = "=".repeat(100);

// "node_modules/@scope/name/lib/x.js" -> "@scope/name"; our own sources -> null.
export function packageOf(modulePath) {
  const parts = modulePath.split(/[\\/]/);
  const at = parts.lastIndexOf("node_modules");
  if (at < 0 || at + 1 >= parts.length) return null;
  return parts[at + 1].startsWith("@") ? `${parts[at + 1]}/${parts[at + 2]}` : parts[at + 1];
}

function packageDir(name) {
  for (const base of ["labextension/node_modules", "node_modules"]) {
    const dir = path.join(ROOT, base, name);
    if (existsSync(path.join(dir, "package.json"))) return dir;
  }
  throw new Error(`notices: ${name} is bundled but not installed (run npm ci)`);
}

function section(name) {
  const dir = packageDir(name);
  const meta = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
  const files = readdirSync(dir)
    .filter((file) => LICENCE_FILE.test(file))
    .sort();
  if (files.length === 0) throw new Error(`notices: ${name} ships no licence file`);
  const source = typeof meta.repository === "object" ? meta.repository.url : meta.repository || meta.homepage || "";
  const texts = files.map((file) => `--- ${file}\n\n${readFileSync(path.join(dir, file), "utf8").replace(/^(\s*\n)+/, "").trimEnd()}\n`);
  return [RULE, `${meta.name} ${meta.version}, licence ${meta.license}`, source, "", ...texts].join("\n");
}

// Write `out` (relative to the repository) naming `bundle`, with one section per package, sorted by name.
export function writeNotices(out, bundle, names) {
  const sorted = [...new Set(names)].filter(Boolean).sort();
  const head =
    `Third-party software in ${bundle}\n\n` +
    "elk-jupyter's own code is under the MIT licence (LICENSE in the package's distribution). The bundle also\n" +
    "contains the npm packages below, each under its own licence, reproduced in full.\n";
  writeFileSync(path.join(ROOT, out), [head, ...sorted.map(section)].join("\n"));
  return sorted;
}

function labextensionNotices() {
  const listed = path.join(ROOT, "elk_jupyter/labextension/static/third-party-licenses.json");
  const names = JSON.parse(readFileSync(listed, "utf8")).packages.map((entry) => entry.name);
  return writeNotices(
    "elk_jupyter/labextension/THIRD_PARTY_NOTICES.txt",
    "the elk-jupyter-renderer JupyterLab extension (static/)",
    names,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] !== "labextension") throw new Error("usage: node js/notices.mjs labextension");
  labextensionNotices();
}
