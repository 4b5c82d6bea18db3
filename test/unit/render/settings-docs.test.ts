/** components/render/settings-docs.ts: Pulumi.yaml's config block and the README's table say what SETTINGS says. */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { describe, expect, test } from "vitest";
import { renderConfigDeclarations, renderSettingsTable } from "../../../components/render/settings-docs";
import { resolveSettings } from "../../../components/resolve-settings";
import { defaultText } from "../../../components/settings";
import { parseConfig } from "../../../components/stack-config";
import { ROOT } from "../../support/stacks";
import { matchesType } from "../../support/pulumi-types";

const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { name: string; config: Record<string, any> };
const FIX = "run `npm run docs` to regenerate it from components/settings.ts";

describe("Pulumi.yaml", () => {
    test(`declares exactly what SETTINGS declares: keys, types, defaults, descriptions, secrecy (${FIX})`, () => {
        expect(project.config).toEqual(renderConfigDeclarations());
    });

    test.each(Object.entries(renderConfigDeclarations()))("%s is declared in the shape the Pulumi CLI's project schema accepts", (_, d) => {
        expect(["string", "integer", "boolean", "array"]).toContain(d.type);
        if (d.type === "array") expect(d.items).toEqual({ type: "string" });
        expect(d.description.length).toBeGreaterThan(10);
        if (d.default !== undefined) expect(matchesType(d.default, d.type)).toBe(true);
        if (d.secret) expect(d.default).toBeUndefined();
    });

    test("the defaults it declares are the program's own defaults", () => {
        const declared = Object.fromEntries(
            Object.entries(renderConfigDeclarations())
                .filter(([, d]) => d.default !== undefined)
                .map(([k, d]) => [k, String(d.default)]),
        );
        expect(parseConfig(declared).settings).toEqual(parseConfig({}).settings);
    });
});

describe("README.md", () => {
    test(`its settings table is the one SETTINGS renders (${FIX})`, () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const table = /<!-- settings:begin[^>]*-->\n([\s\S]*?)<!-- settings:end -->/.exec(readme)?.[1];
        expect(table).toBe(renderSettingsTable());
    });

    test("states per-environment defaults as they are (cacheStorageSize follows the environment, not storageSize)", () => {
        expect(defaultText("cacheStorageSize")).toBe("kind 10Gi, k3d 10Gi, eks 50Gi");
        const s = resolveSettings({ storageSize: "200Gi" });
        expect(s.cacheStorageSize).toBe("10Gi");
    });
});
