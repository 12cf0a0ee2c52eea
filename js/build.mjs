// `npm run build`: each front-end bundle anywidget loads (js/NAME.js as one ESM file and js/NAME.css, into
// elk_jupyter/static/), and beside them the full licence texts of every npm package they contain (js/notices.mjs).
// The saved-turn renderer is `npm run build:labextension`.
import { build } from "esbuild";
import { packageOf, writeNotices } from "./notices.mjs";

const BUNDLES = ["panel", "chat"]; // a new widget's front-end: one more name here
const OUT = "elk_jupyter/static";

const packages = [];
for (const name of BUNDLES) {
  const script = await build({
    entryPoints: [`js/${name}.js`],
    bundle: true,
    format: "esm",
    minify: true,
    legalComments: "none", // the full texts ship beside the bundle instead of fragments inside it
    target: "es2020",
    outfile: `${OUT}/${name}.js`,
    metafile: true,
    logLevel: "warning",
  });
  await build({ entryPoints: [`js/${name}.css`], bundle: true, minify: true, outfile: `${OUT}/${name}.css`, logLevel: "warning" });
  packages.push(...Object.keys(script.metafile.inputs).map(packageOf));
}
writeNotices(`${OUT}/THIRD_PARTY_NOTICES.txt`, BUNDLES.map((name) => `${OUT}/${name}.js`).join(", "), packages);
