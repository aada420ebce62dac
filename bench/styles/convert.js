#!/usr/bin/env node
// Rewrites a routing data set in js-yaml's default style: yaml.dump(data)
// (block style, sequences indented under their key, single quotes where
// a string would read as something else). See convert.py.
//
//     (cd bench/styles && npm ci) && node bench/styles/convert.js IN_DIR OUT_DIR
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");

const [src, dst] = process.argv.slice(2);
if (!src || !dst) {
  console.error("usage: convert.js IN_DIR OUT_DIR");
  process.exit(2);
}
fs.mkdirSync(dst, { recursive: true });
for (const name of fs.readdirSync(src).sort()) {
  const from = path.join(src, name);
  if (name === "calls.csv") fs.copyFileSync(from, path.join(dst, name));
  if (!name.endsWith(".yaml")) continue;
  const data = yaml.load(fs.readFileSync(from, "utf8"));
  fs.writeFileSync(path.join(dst, name), yaml.dump(data));
}
