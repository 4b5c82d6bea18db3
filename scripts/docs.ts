// Rewrites Pulumi.yaml's config block and the README's settings table from components/settings.ts.
// Usage: npm run docs (a unit test fails while either disagrees with the table).
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { renderConfigDeclarations, renderSettingsTable } from "../components/render/settings-docs";

export const README_MARKERS = ["<!-- settings:begin (npm run docs) -->", "<!-- settings:end -->"] as const;
const root = path.resolve(__dirname, "..");

const projectFile = path.join(root, "Pulumi.yaml");
const project = YAML.parseDocument(fs.readFileSync(projectFile, "utf8"));
project.set("config", renderConfigDeclarations());
fs.writeFileSync(projectFile, project.toString({ lineWidth: 0 }));

const readmeFile = path.join(root, "README.md");
const readme = fs.readFileSync(readmeFile, "utf8");
const [begin, end] = README_MARKERS;
const i = readme.indexOf(begin);
const j = readme.indexOf(end);
if (i < 0 || j < i) throw new Error(`README.md needs the markers ${begin} and ${end} around the settings table`);
fs.writeFileSync(readmeFile, `${readme.slice(0, i + begin.length)}\n${renderSettingsTable()}${readme.slice(j)}`);
