/**
 * Pulumi.yaml declares every key the program reads, with a type the Pulumi CLI accepts (its project
 * schema allows string, integer, boolean and array with items) and a description; the declared
 * defaults are the program's own; the shipped stacks set only declared keys with values of their type.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { describe, expect, test } from "vitest";
import { CONFIG_KEYS, parseSettings, SECRET_KEYS } from "../../components/config";
import { ROOT, shippedStacks } from "../support/stacks";

interface Declaration {
    type: string;
    description?: string;
    default?: unknown;
    items?: { type: string };
    secret?: boolean;
}

const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { name: string; config: Record<string, Declaration> };

function matchesType(value: unknown, d: Declaration): boolean {
    switch (d.type) {
        case "string":
            return typeof value === "string";
        case "integer":
            return Number.isInteger(value);
        case "boolean":
            return typeof value === "boolean";
        case "array":
            return Array.isArray(value) && value.every((v) => matchesType(v, d.items as Declaration));
        default:
            return false;
    }
}

describe("Pulumi.yaml", () => {
    test("is the cluster-registry project on the nodejs runtime", () => {
        expect(project.name).toBe("cluster-registry");
    });

    test("declares exactly the keys the program reads", () => {
        expect(Object.keys(project.config).sort()).toEqual([...CONFIG_KEYS].sort());
    });

    test.each(Object.entries(project.config))("%s is typed and described the way the Pulumi CLI accepts", (_, d) => {
        expect(["string", "integer", "boolean", "array"]).toContain(d.type);
        if (d.type === "array") expect(["string", "integer", "boolean"]).toContain(d.items?.type);
        expect(d.description?.length ?? 0).toBeGreaterThan(10);
        for (const k of Object.keys(d)) expect(["type", "items", "description", "default", "secret"]).toContain(k);
        if (d.default !== undefined) expect(matchesType(d.default, d)).toBe(true);
    });

    test("secret keys carry no default", () => {
        for (const k of SECRET_KEYS) expect(project.config[k].default).toBeUndefined();
    });

    test("its defaults are the program's own defaults", () => {
        const declared = Object.fromEntries(
            Object.entries(project.config)
                .filter(([, d]) => d.default !== undefined)
                .map(([k, d]) => [k, typeof d.default === "string" ? d.default : JSON.stringify(d.default)]),
        );
        expect(parseSettings(declared)).toEqual(parseSettings({}));
    });
});

describe.each(shippedStacks())("Pulumi.%s.yaml", (stack) => {
    test("sets only declared keys, each with a value of its declared type", () => {
        const doc = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
        for (const [fullKey, value] of Object.entries(doc.config)) {
            const [ns, key] = fullKey.split(":");
            expect(ns).toBe("cluster-registry");
            expect(project.config[key], `${fullKey} is declared`).toBeDefined();
            expect(matchesType(value, project.config[key]), `${fullKey} has type ${project.config[key].type}`).toBe(true);
        }
    });
});
