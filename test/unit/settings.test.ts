/**
 * components/settings.ts: SETTINGS is the one declaration of every setting: ClusterRegistryArgs'
 * documented defaults must say what it says, its defaults must pass its own checks in every
 * environment, and the shipped stacks set only what it declares. (Pulumi.yaml and the README's table
 * are in render/settings-docs.test.ts.)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import ts from "typescript";
import YAML from "yaml";
import { describe, expect, test } from "vitest";
import { ENVIRONMENT_NAMES } from "../../components/environments";
import { defaultFor, defaultText, Setting, SETTING_KEYS, settingOf } from "../../components/settings";
import { ROOT, shippedStacks } from "../support/stacks";
import { matchesType } from "../support/pulumi-types";

const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { name: string; config: Record<string, any> };

describe("SETTINGS", () => {
    test.each(ENVIRONMENT_NAMES)("every default passes its own check in %s", (environment) => {
        for (const key of SETTING_KEYS) {
            const s: Setting = settingOf(key);
            const d = defaultFor(key, environment);
            if (d === undefined || !s.check) continue;
            for (const value of Array.isArray(d) ? d : [d]) expect(s.check(value), `${key} default ${JSON.stringify(value)}`).toEqual({ ok: true });
        }
    });

    // resolve-settings types every other resolved setting as present: this is what makes that true.
    test.each(ENVIRONMENT_NAMES)("in %s every setting has a default but the computed, per-user and secret ones", (environment) => {
        const without = SETTING_KEYS.filter((key) => defaultFor(key, environment) === undefined);
        expect(without.sort()).toEqual([
            "bcryptCost",
            "cacheCredentials",
            "cacheProxyCredentials",
            "nodeAgentNamespace",
            "objectStorageSecretKey",
            "pullReplicas",
            "userPasswords",
        ]);
    });

    test("secret settings have no default", () => {
        for (const key of SETTING_KEYS) if (settingOf(key).secret) expect(settingOf(key).default).toBeUndefined();
    });
});

/** ClusterRegistryArgs' fields and the last sentence of each one's JSDoc, read from the source. */
function argsDocs(): Record<string, string> {
    const file = path.join(ROOT, "components/settings.ts");
    const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
    const docs: Record<string, string> = {};
    source.forEachChild((node) => {
        if (!ts.isInterfaceDeclaration(node) || node.name.text !== "ClusterRegistryArgs") return;
        for (const m of node.members) {
            const jsDoc = (m as unknown as { jsDoc?: ts.JSDoc[] }).jsDoc?.[0];
            docs[(m.name as ts.Identifier).text] = typeof jsDoc?.comment === "string" ? jsDoc.comment : "";
        }
    });
    return docs;
}

describe("ClusterRegistryArgs", () => {
    const docs = argsDocs();
    // The secret lists of stack config are folded into users and caches in the component's args.
    const folded: Record<string, string> = { userPasswords: "users", cacheCredentials: "caches" };

    test("has a field for every setting, and no other", () => {
        const expected = SETTING_KEYS.filter((k) => !(k in folded));
        expect(Object.keys(docs).sort()).toEqual(expected.sort());
    });

    test.each(SETTING_KEYS.filter((k) => !(k in folded)))("%s is documented and states the default SETTINGS declares", (key) => {
        expect(docs[key]).toMatch(new RegExp(`Default: ${defaultText(key).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.$`));
    });
});

describe.each(shippedStacks())("Pulumi.%s.yaml", (stack) => {
    test("sets only declared keys, each with a value of its declared type", () => {
        const doc = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
        for (const [fullKey, value] of Object.entries(doc.config)) {
            const [ns, key] = fullKey.split(":");
            expect(ns).toBe("cluster-registry");
            expect(project.config[key], `${fullKey} is declared`).toBeDefined();
            expect(matchesType(value, project.config[key].type, project.config[key].items), `${fullKey} has type ${project.config[key].type}`).toBe(true);
        }
    });
});
