// Validates Grafana dashboards against Grafana's published schema, the npm
// package @grafana/schema (Apache-2.0), without Grafana itself (its server
// is AGPL). Usage: `node tests/grafana/validate.mjs DIR`; run by
// tests/dashboards.rs. Exits non-zero with one line per problem.
//
// @grafana/schema ships its schema as TypeScript types (generated from
// Grafana's CUE kinds), not as JSON Schema. So every dashboard is checked
// by the TypeScript compiler as an object literal of type `Dashboard`,
// each panel's `options` and `fieldConfig.defaults.custom` against its
// panel plugin's `Options` and `FieldConfig`: required fields, field
// types, enum values, and no field the schema does not know (excess
// property checks). Beside the types, checks the compiler cannot make:
// - every panel type is a panel the package ships a schema for;
// - every datasource reference resolves to the `datasource` variable
//   (type prometheus), the way provisioning needs it;
// - `gridPos` rectangles lie within the 24 columns and do not overlap;
// - panel ids are unique.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const ts = require('typescript');
const SCHEMA = join(HERE, 'node_modules/@grafana/schema');
const TYPES = join(SCHEMA, 'dist/types');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node validate.mjs DASHBOARD_DIR');
  process.exit(2);
}

// Panel plugins the package has a schema (panelcfg) for, by plugin id.
// Most ids are their folder's name without dashes; three differ.
const ALIASES = { dashlist: 'dashboardlist', annolist: 'annotationslist', nodeGraph: 'nodegraph' };
const exported = Object.keys(JSON.parse(readFileSync(join(SCHEMA, 'package.json'), 'utf8')).exports);
const panelFolders = new Set(
  exported.map((k) => /raw\/composable\/([a-z0-9]+)\/panelcfg\//.exec(k)?.[1]).filter(Boolean),
);
const folderOf = (type) => ALIASES[type] ?? type.replaceAll('-', '');
const hasFieldConfig = (folder) =>
  /export interface FieldConfig\b/.test(
    readFileSync(join(TYPES, `raw/composable/${folder}/panelcfg/x/types.gen.d.ts`), 'utf8'),
  );

const problems = [];
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const boards = files.map((f) => ({ file: f, json: JSON.parse(readFileSync(join(dir, f), 'utf8')) }));

// ------------------------------------------------------ structural checks

const isVariableRef = (ds) => ds && ds.type === 'prometheus' && (ds.uid === '${datasource}' || ds.uid === '$datasource');

for (const { file, json: d } of boards) {
  const say = (m) => problems.push(`${file}: ${m}`);
  const vars = d.templating?.list ?? [];
  const dsVar = vars.find((v) => v.name === 'datasource');
  if (!dsVar || dsVar.type !== 'datasource' || dsVar.query !== 'prometheus') {
    say('no `datasource` variable of type datasource with query prometheus');
  }
  for (const v of vars.filter((v) => v.type === 'query')) {
    if (!isVariableRef(v.datasource)) say(`variable '${v.name}': datasource ${JSON.stringify(v.datasource)} is not the datasource variable`);
  }
  for (const a of d.annotations?.list ?? []) {
    if (a.builtIn === 1) continue;
    if (!isVariableRef(a.datasource)) say(`annotation '${a.name}': datasource ${JSON.stringify(a.datasource)} is not the datasource variable`);
  }
  const ids = new Set();
  const placed = [];
  const all = (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
  for (const p of all) {
    const where = `panel ${p.id} '${p.title}'`;
    if (ids.has(p.id)) say(`${where}: id ${p.id} used twice`);
    ids.add(p.id);
    if (p.type !== 'row') {
      if (!panelFolders.has(folderOf(p.type))) say(`${where}: panel type '${p.type}' is not a panel @grafana/schema knows`);
      if (!isVariableRef(p.datasource)) say(`${where}: datasource ${JSON.stringify(p.datasource)} is not the datasource variable`);
      for (const t of p.targets ?? []) {
        if (!isVariableRef(t.datasource)) say(`${where} target ${t.refId}: datasource ${JSON.stringify(t.datasource)} is not the datasource variable`);
      }
    }
    const g = p.gridPos;
    if (!g || ![g.x, g.y, g.w, g.h].every(Number.isInteger) || g.w < 1 || g.h < 1 || g.x < 0 || g.y < 0 || g.x + g.w > 24) {
      say(`${where}: gridPos ${JSON.stringify(g)} is not within the 24 columns`);
      continue;
    }
    for (const q of placed) {
      const o = q.gridPos;
      if (g.x < o.x + o.w && o.x < g.x + g.w && g.y < o.y + o.h && o.y < g.y + g.h) {
        say(`${where}: gridPos ${JSON.stringify(g)} overlaps panel ${q.id} '${q.title}' ${JSON.stringify(o)}`);
      }
    }
    placed.push(p);
  }
}

// -------------------------------------------------------- the type check

const usedTypes = [...new Set(boards.flatMap(({ json }) => (json.panels ?? []).map((p) => p.type)))]
  .filter((t) => t !== 'row' && panelFolders.has(folderOf(t)));
const alias = (t) => `P_${folderOf(t)}`;
const header = [
  `import type { Dashboard, Panel, RowPanel, AnnotationQuery, FieldConfig, FieldConfigSource } from '${TYPES}/raw/dashboard/x/types.gen';`,
  ...usedTypes.map((t) => `import type * as ${alias(t)} from '${TYPES}/raw/composable/${folderOf(t)}/panelcfg/x/types.gen';`),
  // Saved JSON holds an enum's value ("background"), which TypeScript
  // only accepts as the enum member: compare values instead.
  'type Plain<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T : T extends Array<infer U> ? Array<Plain<U>> : T extends object ? { [K in keyof T]: Plain<T[K]> } : T;',
  // The Prometheus plugin keeps its annotation query in fields of its own,
  // which the core schema leaves to the plugin.
  'type PrometheusAnnotation = AnnotationQuery & { expr: string; step?: string; titleFormat?: string; tagKeys?: string; textFormat?: string; useValueForTime?: boolean };',
  'type Defaults<C> = Plain<Omit<FieldConfig, "custom">> & { custom?: C };',
  'type PanelOf<T extends string, O, C> = Plain<Omit<Panel, "type" | "options" | "fieldConfig">> & { type: T; options: Plain<O>; fieldConfig: { defaults: Defaults<C>; overrides: Plain<FieldConfigSource["overrides"]> } };',
  `type AnyPanel = Plain<RowPanel>${usedTypes
    .map((t) => ` | PanelOf<'${t}', ${alias(t)}.Options, ${hasFieldConfig(folderOf(t)) ? `Plain<${alias(t)}.FieldConfig>` : 'never'}>`)
    .join('')};`,
  'type Board = Plain<Omit<Dashboard, "panels" | "annotations">> & { panels: AnyPanel[]; annotations: { list: Array<Plain<AnnotationQuery> | Plain<PrometheusAnnotation>> } };',
];
const work = mkdtempSync(join(tmpdir(), 'grafana-schema-'));
const sources = boards.map(({ file, json }, i) => {
  const path = join(work, `board${i}.ts`);
  // Line n of the dashboard file is line n + header.length of this source.
  writeFileSync(path, `${header.join('\n')}\nexport const board: Board = ${JSON.stringify(json, null, 2)};\n`);
  return { file, path };
});
const program = ts.createProgram(sources.map((s) => s.path), {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  types: [],
});
for (const diag of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(diag.messageText, '\n  ');
  const source = sources.find((s) => s.path === diag.file?.fileName);
  if (!source) {
    problems.push(`schema: ${message}`);
    continue;
  }
  const { line } = diag.file.getLineAndCharacterOfPosition(diag.start ?? 0);
  problems.push(`${source.file}:${line + 1 - header.length}: ${message}`);
}
rmSync(work, { recursive: true, force: true });

if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
const panels = boards.reduce((n, { json }) => n + (json.panels ?? []).length, 0);
console.log(`${boards.length} dashboards valid against @grafana/schema ${JSON.parse(readFileSync(join(SCHEMA, 'package.json'), 'utf8')).version} (${panels} panels; panel types: ${usedTypes.join(', ')})`);
