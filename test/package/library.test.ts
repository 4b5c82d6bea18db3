/**
 * The library as others install it (issue 20, part 2): `npm run package` builds the tarball, a scratch
 * Pulumi TypeScript program installs it from npm's cache, the README's example is that program, it
 * type-checks against the package's declarations and runs under the project's Pulumi mocks.
 *
 * @pulumi/eks is stood in for by a local package of the same name and shape (`Cluster` with a
 * `provider: k8s.Provider` and a `kubeconfig`): the real one brings @pulumi/aws (hundreds of MB) and
 * makes AWS resources the mocks do not emulate. Everything else is what npm installs.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ROOT } from "../support/stacks";
import { assetFiles, buildPackage } from "../../scripts/package";

/** The README block this test runs follows this marker. */
export const EXAMPLE_MARKER = "<!-- tested: test/package/library.test.ts";
const ROOT_MANIFEST = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string; devDependencies: Record<string, string> };
const LOCKED = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version: string }> };
const locked = (name: string) => LOCKED.packages[`node_modules/${name}`].version;

/** The first ```ts block after the marker in README.md. */
export function readmeExample(readme: string): string {
    const at = readme.indexOf(EXAMPLE_MARKER);
    if (at < 0) throw new Error(`README.md has no ${EXAMPLE_MARKER} marker`);
    const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
    if (block === null) throw new Error("README.md has no ```ts block after the tested marker");
    return block[1];
}

const STUB_EKS_JS = `const pulumi = require("@pulumi/pulumi");
const k8s = require("@pulumi/kubernetes");
class Cluster extends pulumi.ComponentResource {
    constructor(name, args, opts) {
        super("eks:index:Cluster", name, {}, opts);
        this.kubeconfig = pulumi.output({ apiVersion: "v1", kind: "Config" });
        this.provider = new k8s.Provider(name + "-eks-k8s", { kubeconfig: this.kubeconfig.apply(JSON.stringify) }, { parent: this });
        this.registerOutputs({});
    }
}
exports.Cluster = Cluster;
`;
// The members the example uses, typed as @pulumi/eks 3.x types them.
const STUB_EKS_DTS = `import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
export interface ClusterOptions {
    instanceType?: pulumi.Input<string>;
    desiredCapacity?: pulumi.Input<number>;
    minSize?: pulumi.Input<number>;
    maxSize?: pulumi.Input<number>;
}
export declare class Cluster extends pulumi.ComponentResource {
    readonly kubeconfig: pulumi.Output<any>;
    readonly provider: k8s.Provider;
    constructor(name: string, args?: ClusterOptions, opts?: pulumi.ComponentResourceOptions);
}
`;
// What `pulumi new typescript` writes.
const TSCONFIG = {
    compilerOptions: {
        strict: true,
        outDir: "bin",
        target: "es2020",
        module: "commonjs",
        moduleResolution: "node",
        sourceMap: true,
        experimentalDecorators: true,
        pretty: false,
        noFallthroughCasesInSwitch: true,
        noImplicitReturns: true,
        forceConsistentCasingInFileNames: true,
    },
    files: ["index.ts", "misuse.ts"],
};
// A call the declarations must refuse: proves the example is checked against real types, not `any`.
const MISUSE = `import { ClusterRegistry } from "cluster-registry";
new ClusterRegistry("wrong", { environment: "gke" });
`;

function write(file: string, text: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
}

/** A scratch Pulumi program: the README's example, the tarball and the program's own Pulumi packages. */
function scaffold(dir: string, tarball: string): void {
    write(path.join(dir, "Pulumi.yaml"), "name: my-infra\nruntime: nodejs\n");
    write(path.join(dir, "index.ts"), readmeExample(fs.readFileSync(path.join(ROOT, "README.md"), "utf8")));
    write(path.join(dir, "misuse.ts"), MISUSE);
    write(path.join(dir, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 4));
    write(path.join(dir, "stub-eks", "package.json"), JSON.stringify({ name: "@pulumi/eks", version: "3.0.0-stub", main: "index.js", types: "index.d.ts" }));
    write(path.join(dir, "stub-eks", "index.js"), STUB_EKS_JS);
    write(path.join(dir, "stub-eks", "index.d.ts"), STUB_EKS_DTS);
    const dependencies = {
        "cluster-registry": `file:${tarball}`,
        "@pulumi/eks": "file:./stub-eks",
        "@pulumi/pulumi": locked("@pulumi/pulumi"),
        "@pulumi/kubernetes": locked("@pulumi/kubernetes"),
        "@types/node": locked("@types/node"),
    };
    write(path.join(dir, "package.json"), JSON.stringify({ name: "my-infra", private: true, main: "index.ts", dependencies }, null, 4));
}

describe("the packed library in a program of its own", () => {
    let work = "";
    let tarball = "";
    let program = "";

    beforeAll(() => {
        work = fs.mkdtempSync(path.join(os.tmpdir(), "cluster-registry-package-"));
        tarball = buildPackage(work);
        program = path.join(work, "my-infra");
        scaffold(program, tarball);
        // npm's cache already holds what `npm ci` fetched for this repository: no download in the usual case.
        execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: program, stdio: "pipe" });
    }, 300_000);
    afterAll(() => {
        if (work !== "") fs.rmSync(work, { recursive: true, force: true });
    });

    test("the tarball holds the compiled library, its declarations and every non-TypeScript file of components/, and no stack program", () => {
        const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" })
            .trim()
            .split("\n")
            .map((f) => f.replace(/^package\//, ""));
        expect(files).toEqual(expect.arrayContaining(["index.js", "index.d.ts", "cluster-registry.js", "cluster-registry.d.ts", "CHANGELOG.md"]));
        const assets = assetFiles(path.join(ROOT, "components"));
        expect(assets.filter((f) => f.startsWith(`node-agent${path.sep}`)).length).toBeGreaterThan(0);
        for (const f of assets) {
            expect(files, f).toContain(f.split(path.sep).join("/"));
            expect(fs.readFileSync(path.join(program, "node_modules/cluster-registry", f), "utf8"), f).toBe(
                fs.readFileSync(path.join(ROOT, "components", f), "utf8"),
            );
        }
        // No TypeScript source (Pulumi's ts-node never compiles under node_modules), no stack files.
        expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
        expect(files.filter((f) => /^Pulumi\./.test(f))).toEqual([]);
    });

    test("the installed package is the repository's version, with a CHANGELOG entry, and its entry is the library", () => {
        const installed = path.join(program, "node_modules/cluster-registry");
        const manifest = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")) as { version: string };
        expect(manifest.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
        expect(manifest.version).toBe(ROOT_MANIFEST.version);
        expect(fs.readFileSync(path.join(ROOT, "CHANGELOG.md"), "utf8")).toMatch(new RegExp(`^## ${manifest.version.replace(/\./g, "\\.")} `, "m"));
        const resolved = execFileSync("node", ["-p", 'require.resolve("cluster-registry")'], { cwd: program, encoding: "utf8" }).trim();
        expect(resolved).toBe(path.join(fs.realpathSync(installed), "index.js"));
        // The stack's config parser is internal: `exports` closes deep imports.
        const deep = () => execFileSync("node", ["-e", 'require("cluster-registry/stack-config")'], { cwd: program, stdio: "pipe" });
        expect(deep).toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
    });

    test("the README's example type-checks against the package's declarations, which refuse a wrong environment", () => {
        const tsc = path.join(ROOT, "node_modules", ".bin", "tsc");
        let out = "";
        try {
            execFileSync(tsc, ["--noEmit", "-p", program], { cwd: program, encoding: "utf8", stdio: "pipe" });
        } catch (e) {
            out = String((e as { stdout?: string }).stdout ?? "");
        }
        const errors = out.split("\n").filter((l) => /error TS\d+/.test(l));
        expect(
            errors.filter((l) => !l.startsWith("misuse.ts")),
            out,
        ).toEqual([]);
        expect(errors.join("\n")).toMatch(/^misuse\.ts\(2,\d+\): error TS2322: Type '"gke"' is not assignable/m);
    });

    test("under mocks, the README's program puts the registry on the cluster's provider and ships the repository's node agent", async () => {
        const cloud = new FakeCloud({ clusterIP: () => "10.100.0.10" });
        const { outputs } = await runProgram(cloud, { config: {}, entry: path.join(program, "index.ts") });
        expect(outputs.registryHost).toBe("registry.registry.svc.cluster.local:5000");
        expect(String(outputs.registryCaCertPem)).toMatch(/^-----BEGIN CERTIFICATE-----/);

        const provider = cloud.one("pulumi:providers:kubernetes", "cluster-eks-k8s");
        const ref = `${provider.urn}::${provider.id}`;
        const deployment = cloud.one("kubernetes:apps/v1:Deployment", "registry-hosted");
        expect(deployment.provider).toBe(ref);
        for (const r of cloud.resources.filter((x) => x.type.startsWith("kubernetes:"))) expect(r.provider, `${r.type} ${r.name}`).toBe(ref);

        // The DaemonSet's scripts, read by the compiled code from its own directory, are the repository's files.
        const ds = cloud.one("kubernetes:apps/v1:DaemonSet");
        const volume = ds.inputs.spec.template.spec.volumes.find((v: any) => v.configMap !== undefined);
        const configMap = cloud.byType("kubernetes:core/v1:ConfigMap").find((c) => c.outputs.metadata.name === volume.configMap.name)!;
        const scripts = Object.entries(configMap.inputs.data as Record<string, string>);
        expect(scripts.length).toBeGreaterThan(0);
        for (const [name, text] of scripts) expect(text, name).toBe(fs.readFileSync(path.join(ROOT, "components/node-agent", name), "utf8"));
    });
});
