/** Reads the shipped stack files the way the Pulumi CLI hands them to the program. */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";

export const ROOT = path.resolve(__dirname, "../..");
export const ENTRY = path.join(ROOT, "index.ts");

/** The stacks we ship: `Pulumi.<stack>.yaml` beside Pulumi.yaml. */
export function shippedStacks(): string[] {
    return fs
        .readdirSync(ROOT)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

/** A stack's config as `{ "project:key": "value" }`, arrays and numbers as Pulumi serialises them. */
export function stackConfig(stack: string): Record<string, string> {
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) config[k] = typeof v === "string" ? v : JSON.stringify(v);
    return config;
}
