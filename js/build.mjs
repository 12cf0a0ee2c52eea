// `npm run build`: the panel's ESM bundle and stylesheet for anywidget (elk_jupyter/static), and the full licence
// texts of what the bundle contains beside it (js/notices.mjs). The saved-turn renderer is `npm run build:labextension`.
import { build } from "esbuild";
import { packageOf, writeNotices } from "./notices.mjs";

const panel = await build({
  entryPoints: ["js/panel.js"],
  bundle: true,
  format: "esm",
  minify: true,
  legalComments: "none", // the full texts ship beside the bundle instead of fragments inside it
  target: "es2020",
  outfile: "elk_jupyter/static/panel.js",
  metafile: true,
  logLevel: "warning",
});
await build({ entryPoints: ["js/panel.css"], minify: true, outfile: "elk_jupyter/static/panel.css", logLevel: "warning" });
writeNotices(
  "elk_jupyter/static/THIRD_PARTY_NOTICES.txt",
  "elk_jupyter/static/panel.js",
  Object.keys(panel.metafile.inputs).map(packageOf),
);
