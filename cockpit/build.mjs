#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Builds asynctask's page for Cockpit into a directory (make cockpit: cockpit/dist):
//
//   node build.mjs OUTDIR
//
// The page's own files from src/ are copied as they are: it is plain JavaScript modules, so there
// is nothing to bundle or transpile. The one thing built is patternfly.css: the parts of
// PatternFly 4 (the major version Cockpit 287's own pages use, pinned in package-lock.json) that
// the page uses, concatenated, with the fonts taken from Cockpit's own copy (../../static/fonts/,
// as Cockpit's pages do) instead of shipped again. The output is the same for the same inputs.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = process.argv[2];
if (!outDir || process.argv.length !== 3) {
    console.error("usage: node build.mjs OUTDIR");
    process.exit(2);
}

const patternfly = path.join(here, "node_modules", "@patternfly", "patternfly");
if (!fs.existsSync(path.join(patternfly, "package.json"))) {
    console.error(`build.mjs: ${patternfly} is missing: run npm ci in ${here}`);
    process.exit(1);
}
const version = JSON.parse(fs.readFileSync(path.join(patternfly, "package.json"), "utf8")).version;

// PatternFly's base without its fonts and icon fonts, then the components and layouts the page uses.
const PARTS = [
    "base/patternfly-variables.css",
    "base/patternfly-shield-inheritable.css",
    "base/patternfly-shield-noninheritable.css",
    "base/patternfly-common.css",
    "base/patternfly-globals.css",
    "base/patternfly-themes.css",
    ...["Alert", "Backdrop", "Breadcrumb", "Button", "Card", "CodeBlock", "DescriptionList", "EmptyState", "Form",
        "FormControl", "InputGroup", "Label", "ModalBox", "Page", "Progress", "Table", "Title", "Toolbar"]
        .map(name => `components/${name}/${name.replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase()}.css`),
    ...["Bullseye", "Gallery", "Grid", "Split"].map(name => `layouts/${name}/${name.toLowerCase()}.css`),
];

// Cockpit ships these in /usr/share/cockpit/static/fonts/ (cockpit-ws).
const FONTS = {
    RedHatText: ["Regular", "Medium", "Bold"],
    RedHatDisplay: ["Regular", "Medium", "Bold"],
    RedHatMono: ["Regular", "Medium", "Bold"],
};
const WEIGHTS = { Regular: 400, Medium: 500, Bold: 700 };

function fontFaces() {
    const faces = [];
    for (const [family, styles] of Object.entries(FONTS)) {
        for (const style of styles) {
            for (const italic of [false, true]) {
                const file = `${family}-${style}${italic ? "Italic" : ""}.woff2`.replace("RegularItalic", "Italic");
                faces.push(`@font-face {\n  font-family: "${family}";\n  src: url("../../static/fonts/${file}") format("woff2");\n` +
                    `  font-style: ${italic ? "italic" : "normal"};\n  font-weight: ${WEIGHTS[style]};\n  font-display: fallback;\n}\n`);
            }
        }
    }
    return faces.join("");
}

function part(file) {
    // The page uses no pf-m-icon-sprite form control, whose image it does not ship.
    const css = fs.readFileSync(path.join(patternfly, file), "utf8")
        .replace(/^\s*--pf-c-form-control--m-icon-sprite[\w-]*: url\([^)]*\);\n/gm, "");
    // Nothing may point at a file this package does not ship.
    for (const m of css.matchAll(/url\(\s*["']?([^"')]*)/g)) {
        if (!m[1].startsWith("data:"))
            throw new Error(`${file} refers to ${m[1]}, which the page does not ship`);
    }
    return `/* ${file} */\n${css.trim()}\n`;
}

const css = [
    `/* PatternFly ${version} (MIT license, Red Hat, Inc.): the parts asynctask's page uses. Built by build.mjs. */\n`,
    fontFaces(),
    ...PARTS.map(part),
].join("\n");

const tmp = fs.mkdtempSync(path.join(path.dirname(path.resolve(outDir)), ".cockpit-build-"));
try {
    for (const name of fs.readdirSync(path.join(here, "src")).sort())
        fs.copyFileSync(path.join(here, "src", name), path.join(tmp, name));
    fs.writeFileSync(path.join(tmp, "patternfly.css"), css);
    fs.chmodSync(tmp, 0o755);
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.renameSync(tmp, outDir);
} catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
}
console.log(`build.mjs: ${outDir}: ${fs.readdirSync(outDir).length} files, patternfly.css ${css.length} bytes (PatternFly ${version})`);
