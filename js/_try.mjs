import { JSDOM } from "jsdom";
import fs from "node:fs";
import { createRenderPolicy } from "./render.js";
const { window } = new JSDOM("<!DOCTYPE html><body></body>");
const policy = createRenderPolicy(window);
const dir = "tests/fixtures/render_corpus/";
for (const f of process.argv.slice(2)) {
  const div = window.document.createElement("div");
  policy.render(div, fs.readFileSync(dir + f, "utf8").replaceAll("{PORT}", "8765"));
  console.log("=== " + f + "\n" + div.innerHTML);
}
