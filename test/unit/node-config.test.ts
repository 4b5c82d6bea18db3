/**
 * The node agent: a shell file shipped byte for byte, and the Secret that tells it what to write.
 * The pure parts with literal expected text; the program's ConfigMap, Secret and DaemonSet under the
 * Pulumi mocks; and the lint step that keeps the script shellcheck-clean.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { MANIFEST_KEY, renderNodeFilesData, stateDirName, validateNodeFiles } from "../../components/node-agent/files";
import {
    CONTAINERD_CHECK_FILE,
    CONTAINERD_CHECK_SCRIPT_PATH,
    CONTAINERD_CONFIG_MOUNT,
    NODE_AGENT_FILE,
    NODE_AGENT_MOUNT,
    NODE_AGENT_PARTS,
    NODE_AGENT_SCRIPT_PATH,
    NODE_FILES_MOUNT,
    nodeAgentChecksum,
    nodeAgentScript,
    nodeFiles,
} from "../../components/node-config";
import { isCI } from "../integration/harness/tools";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ENTRY, ROOT, stackConfig } from "../support/stacks";

const T = {
    cm: "kubernetes:core/v1:ConfigMap",
    secret: "kubernetes:core/v1:Secret",
    ds: "kubernetes:apps/v1:DaemonSet",
};
const CA = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";

describe("node files", () => {
    test("nodeFiles gives each registry a hosts.toml and the CA beside it", () => {
        expect(
            nodeFiles("registry.registry", CA, [
                {
                    host: "r.example:5000",
                    server: "https://r.example:5000",
                    endpoint: "https://10.96.0.10:5000",
                    capabilities: ["pull", "resolve", "push"],
                    serverIsOurs: true,
                },
            ]),
        ).toEqual([
            {
                path: "r.example:5000/hosts.toml",
                content:
                    "# Written by cluster-registry (registry.registry). Removed, and any earlier file restored, when it is uninstalled.\n" +
                    'server = "https://r.example:5000"\nca = "ca.crt"\n\n[host."https://10.96.0.10:5000"]\ncapabilities = [ "pull", "resolve", "push" ]\nca = "ca.crt"\n',
            },
            { path: "r.example:5000/ca.crt", content: CA },
        ]);
    });

    test("the Secret data is a manifest plus one key per file, in path order, contents verbatim", () => {
        expect(
            renderNodeFilesData([
                { path: "b.example:5000/hosts.toml", content: 'server = "$NOT_EXPANDED"\n' },
                { path: "a.example/ca.crt", content: "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----" },
            ]),
        ).toEqual({
            manifest: "f0 a.example/ca.crt\nf1 b.example:5000/hosts.toml\n",
            f0: "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----",
            f1: 'server = "$NOT_EXPANDED"\n',
        });
        expect(renderNodeFilesData([])).toEqual({ manifest: "" });
    });

    test.each([
        ["../etc/passwd"],
        ["/etc/containerd/x/hosts.toml"],
        ["host/../../x"],
        ["host/sub/dir"],
        ["host name/hosts.toml"],
        ["host/$(reboot)"],
        ["host/.."],
        [".hidden/x"],
    ])("refuses the unsafe path %s", (p) => {
        expect(() => renderNodeFilesData([{ path: p, content: "x" }])).toThrow(/unsafe node file path/);
    });

    test("refuses a path given twice", () => {
        expect(() =>
            validateNodeFiles([
                { path: "h/hosts.toml", content: "a" },
                { path: "h/hosts.toml", content: "b" },
            ]),
        ).toThrow(/node file h\/hosts.toml is given twice/);
    });

    test("the state directory is hidden from containerd, and the owner must be a plain name", () => {
        expect(stateDirName("registry.registry")).toBe(".cluster-registry.registry.registry");
        for (const bad of ["", "../x", "Registry", "a/b", "-x", "lock", "a.b.c", "a..b", "a.-b"])
            expect(() => stateDirName(bad)).toThrow(/lower-case DNS-like name/);
    });

    test("the checksum covers both scripts and every key of the data", () => {
        const data = { manifest: "f0 h/ca.crt\n", f0: CA };
        const scripts = { "node-agent.sh": "agent", "containerd-check.sh": "check" };
        const base = nodeAgentChecksum(scripts, data);
        expect(nodeAgentChecksum(scripts, { f0: CA, manifest: "f0 h/ca.crt\n" })).toBe(base);
        expect(nodeAgentChecksum({ ...scripts, "node-agent.sh": "agent 2" }, data)).not.toBe(base);
        expect(nodeAgentChecksum({ ...scripts, "containerd-check.sh": "check 2" }, data)).not.toBe(base);
        expect(nodeAgentChecksum(scripts, { ...data, f0: CA + "x" })).not.toBe(base);
        expect(nodeAgentChecksum(scripts, { ...data, f1: "" })).not.toBe(base);
        // A key moved from one map to the other is a different checksum.
        expect(nodeAgentChecksum({ ...scripts, f0: CA }, { manifest: data.manifest })).not.toBe(base);
        expect(base).toMatch(/^[0-9a-f]{64}$/);
    });
});

describe("the program's node agent", () => {
    async function deployWith(clusterIP: string) {
        // A fresh cloud each time: a new CA as well as a new ClusterIP.
        const cloud = new FakeCloud({ clusterIP: () => clusterIP });
        const { outputs } = await runProgram(cloud, { config: stackConfig("dev"), entry: ENTRY });
        const ds = cloud.one(T.ds).inputs;
        const volumes = Object.fromEntries(ds.spec.template.spec.volumes.map((v: any) => [v.name, v]));
        const configMap = cloud.byType(T.cm).find((c) => c.outputs.metadata.name === volumes.agent.configMap.name)!;
        const secret = cloud.byType(T.secret).find((s) => s.outputs.metadata.name === volumes.files.secret.secretName)!;
        return { cloud, outputs, ds, volumes, configMap, secret };
    }

    test("the ConfigMap holds the repository's script byte for byte, the same for any ClusterIP and CA; the Secret carries what differs", async () => {
        const a = await deployWith("10.96.0.10");
        const b = await deployWith("10.96.7.77");
        expect(a.outputs.caCertPem).not.toBe(b.outputs.caCertPem);

        // Every shell file beside the agent (its parts, the containerd check) reaches the pod, byte for byte.
        const dir = path.dirname(NODE_AGENT_SCRIPT_PATH);
        const shellFiles = fs.readdirSync(dir).filter((f) => f.endsWith(".sh"));
        expect(shellFiles).toEqual(expect.arrayContaining([NODE_AGENT_FILE, CONTAINERD_CHECK_FILE, ...NODE_AGENT_PARTS]));
        expect(a.configMap.inputs.data).toEqual(Object.fromEntries(shellFiles.map((f) => [f, fs.readFileSync(path.join(dir, f), "utf8")])));
        expect(a.configMap.inputs.data[CONTAINERD_CHECK_FILE]).toBe(fs.readFileSync(CONTAINERD_CHECK_SCRIPT_PATH, "utf8"));
        expect(b.configMap.inputs.data).toEqual(a.configMap.inputs.data);

        const [da, db] = [a.secret.inputs.stringData, b.secret.inputs.stringData];
        expect(da).not.toEqual(db);
        // The same paths under the same keys; only the contents differ.
        expect(da[MANIFEST_KEY]).toBe(db[MANIFEST_KEY]);
        const keyOf = Object.fromEntries(
            da[MANIFEST_KEY].trimEnd()
                .split("\n")
                .map((l: string) => l.split(" ").reverse()),
        );
        const host = "registry.registry.svc.cluster.local:5000";
        expect(da[keyOf[`${host}/ca.crt`]]).toBe(a.outputs.caCertPem);
        expect(db[keyOf[`${host}/ca.crt`]]).toBe(b.outputs.caCertPem);
        expect(da[keyOf[`${host}/hosts.toml`]]).toContain('[host."https://10.96.0.10:5000"]');
        expect(db[keyOf[`${host}/hosts.toml`]]).toContain('[host."https://10.96.7.77:5000"]');
        expect(a.secret.inputs.type).toBe("Opaque");
        for (const key of Object.keys(da)) expect(key).toMatch(/^[-._a-zA-Z0-9]+$/);

        // No ConfigMap carries a node file: the CA and the ClusterIP reach the nodes only through the Secret.
        for (const cm of a.cloud.byType(T.cm)) {
            expect(JSON.stringify(cm.inputs)).not.toContain("BEGIN CERTIFICATE");
            expect(JSON.stringify(cm.inputs)).not.toContain("https://10.96.0.10:5000");
        }
        // ...and a change to it rolls the pods.
        const checksum = (x: typeof a) => x.ds.spec.template.metadata.annotations["cluster-registry/checksum"];
        expect(checksum(a)).toBe(nodeAgentChecksum(a.configMap.inputs.data, da));
        expect(checksum(a)).not.toBe(checksum(b));
    });

    test("the DaemonSet runs the mounted script with the mounted files, both read-only", async () => {
        const { ds, volumes, outputs } = await deployWith("10.96.0.10");
        const [c] = ds.spec.template.spec.containers;
        expect(c.command).toEqual(["/bin/sh", `${NODE_AGENT_MOUNT}/${NODE_AGENT_FILE}`, "run"]);
        expect(c.volumeMounts).toEqual([
            { name: "certs-d", mountPath: "/host/certs.d" },
            { name: "run", mountPath: "/run/node-agent" },
            { name: "token", mountPath: "/var/run/secrets/cluster-registry", readOnly: true },
            { name: "agent", mountPath: NODE_AGENT_MOUNT, readOnly: true },
            { name: "files", mountPath: NODE_FILES_MOUNT, readOnly: true },
            { name: "containerd-config", mountPath: CONTAINERD_CONFIG_MOUNT, readOnly: true },
        ]);
        // The config's directory, read-only, never created: a missing one keeps the pod from starting.
        expect(volumes["containerd-config"].hostPath).toEqual({ path: "/etc/containerd", type: "Directory" });
        expect(c.readinessProbe.exec.command).toEqual(["cat", "/run/node-agent/ready"]);
        expect(volumes.run.emptyDir.medium).toBe("Memory");
        expect(volumes.agent.configMap.defaultMode).toBe(0o444);
        expect(volumes.files.secret.defaultMode).toBe(0o400);
        const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
        expect(env).toEqual({
            CERTS_DIR: "/host/certs.d",
            FILES_DIR: NODE_FILES_MOUNT,
            OWNER: "registry.registry",
            REAPPLY_SECONDS: "300",
            POD_UID: { fieldRef: { fieldPath: "metadata.uid" } },
            NAMESPACE: { fieldRef: { fieldPath: "metadata.namespace" } },
            DAEMONSET: "registry-node-config",
            TOKEN_FILE: "/var/run/secrets/cluster-registry/token",
            RUN_DIR: "/run/node-agent",
            CONTAINERD_CHECK: "enforce",
            CONTAINERD_CONFIG: `${CONTAINERD_CONFIG_MOUNT}/config.toml`,
            NODE_CONTAINERD_CONFIG: "/etc/containerd/config.toml",
            NODE_CERTS_DIR: "/etc/containerd/certs.d",
        });
        expect(outputs.certsDir).toBe(volumes["certs-d"].hostPath.path);
    });

    test("the agent's ServiceAccount may only get its own DaemonSet, which is named for it and outlives no pod of its own", async () => {
        const { ds, cloud } = await deployWith("10.96.0.10");
        expect(ds.metadata.name).toBe("registry-node-config");
        expect(ds.metadata.annotations["pulumi.com/deletionPropagationPolicy"]).toBe("foreground");
        const [role] = cloud.byType("kubernetes:rbac.authorization.k8s.io/v1:Role");
        expect(role.inputs.rules).toEqual([{ apiGroups: ["apps"], resources: ["daemonsets"], resourceNames: ["registry-node-config"], verbs: ["get"] }]);
        const [account] = cloud.byType("kubernetes:core/v1:ServiceAccount");
        expect(ds.spec.template.spec.serviceAccountName).toBe(account.outputs.metadata.name);
        expect(ds.spec.template.spec.automountServiceAccountToken).toBe(false);
    });
});

describe("the agent script", () => {
    const script = nodeAgentScript();
    const dir = path.dirname(NODE_AGENT_SCRIPT_PATH);
    const parts = [NODE_AGENT_FILE, ...NODE_AGENT_PARTS, CONTAINERD_CHECK_FILE];
    const hasShellcheck = (() => {
        try {
            execFileSync("shellcheck", ["--version"], { stdio: "ignore" });
            return true;
        } catch {
            return false;
        }
    })();

    test("is a POSIX sh file in the repository", () => {
        expect(NODE_AGENT_SCRIPT_PATH).toBe(path.join(ROOT, "components", "node-agent", "node-agent.sh"));
        expect(script.startsWith("#!/bin/sh\n")).toBe(true);
        // Each part it sources is named in the script, from beside it.
        for (const part of NODE_AGENT_PARTS) expect(script).toContain(`. "$AGENT_DIR/${part}"`);
    });

    test("`npm run lint` runs shellcheck on every part as POSIX sh", () => {
        const lint: string = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts.lint;
        expect(lint.split("&&").map((s) => s.trim())).toContain("shellcheck -x -s sh components/node-agent/*.sh");
        expect(
            fs
                .readdirSync(dir)
                .filter((f) => f.endsWith(".sh"))
                .sort(),
        ).toEqual([...parts].sort());
    });

    // Outside CI a machine without shellcheck skips this; CI installs it (scripts/test-all) and must run it.
    test.skipIf(!hasShellcheck && !isCI())(
        "is shellcheck-clean, with no blanket disables and a reason above any targeted one; only `local` (SC3043) for a whole file",
        () => {
            for (const part of parts) {
                execFileSync("shellcheck", ["-x", "-s", "sh", path.join(dir, part)], { stdio: "pipe", cwd: dir });
                const lines = fs.readFileSync(path.join(dir, part), "utf8").split("\n");
                lines.forEach((line, i) => {
                    if (!/shellcheck\s+.*disable=/.test(line)) return;
                    const where = `${part} line ${i + 1}`;
                    expect(line, where).not.toMatch(/disable=all/);
                    // A directive before the first command covers the whole file: only for `local`.
                    const wholeFile = !lines.slice(0, i).some((l) => l.trim() !== "" && !l.trim().startsWith("#"));
                    if (wholeFile) expect(line.replace(/.*disable=/, ""), `${where} disables for the whole file`).toBe("SC3043");
                    expect(lines[i - 1].trim().startsWith("#") && !/shellcheck/.test(lines[i - 1]), `${where} needs a comment saying why`).toBe(true);
                });
            }
        },
    );
});

describe("the containerd check's wiring", () => {
    async function daemonSet(config: Record<string, string>) {
        const cloud = new FakeCloud({ clusterIP: () => "10.96.0.10" });
        await runProgram(cloud, { config: { ...stackConfig("dev"), ...config }, entry: ENTRY });
        const ds = cloud.one(T.ds).inputs;
        const [c] = ds.spec.template.spec.containers;
        return {
            env: Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom])),
            mounts: c.volumeMounts.map((m: any) => m.name),
            volumes: Object.fromEntries(ds.spec.template.spec.volumes.map((v: any) => [v.name, v])),
        };
    }

    test("k3d checks k3s's generated config against k3s's certs.d", async () => {
        const { env, volumes } = await daemonSet({ "cluster-registry:environment": "k3d" });
        expect(volumes["containerd-config"].hostPath).toEqual({ path: "/var/lib/rancher/k3s/agent/etc/containerd", type: "Directory" });
        expect(env.NODE_CONTAINERD_CONFIG).toBe("/var/lib/rancher/k3s/agent/etc/containerd/config.toml");
        expect(env.NODE_CERTS_DIR).toBe("/var/lib/rancher/k3s/agent/etc/containerd/certs.d");
        expect(env.NODE_CERTS_DIR).toBe(volumes["certs-d"].hostPath.path);
    });

    test("warn keeps the check and its mount; off drops both", async () => {
        const warn = await daemonSet({ "cluster-registry:containerdCheck": "warn" });
        expect(warn.env.CONTAINERD_CHECK).toBe("warn");
        expect(warn.mounts).toContain("containerd-config");
        const off = await daemonSet({ "cluster-registry:containerdCheck": "off" });
        expect(off.env.CONTAINERD_CHECK).toBe("off");
        expect(off.env.CONTAINERD_CONFIG).toBeUndefined();
        expect(off.mounts).not.toContain("containerd-config");
        expect(off.volumes["containerd-config"]).toBeUndefined();
    });

    test("any other value is refused before anything is created, naming the key", async () => {
        const cloud = new FakeCloud({ clusterIP: () => "10.96.0.10" });
        await expect(runProgram(cloud, { config: { ...stackConfig("dev"), "cluster-registry:containerdCheck": "strict" }, entry: ENTRY })).rejects.toThrow(
            /cluster-registry:containerdCheck: "strict" is not valid; expected one of enforce, warn, off/,
        );
        expect(cloud.resources).toHaveLength(0);
    });
});

describe("the rollout checksum of the node agent", () => {
    test("stays plain when the node files are secret, so preview diffs still show the pod template", async () => {
        // A program whose node files carry a secret (a CA marked secret stands for a node credential).
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nodecfg-secret-"));
        const entry = path.join(dir, "index.ts");
        fs.writeFileSync(
            entry,
            [
                `import * as pulumi from "@pulumi/pulumi";`,
                `import { NodeConfig } from ${JSON.stringify(path.join(ROOT, "components", "node-config"))};`,
                `new NodeConfig("nc", {`,
                `    namespace: "registry", owner: "registry.registry", image: "registry:3", daemonSetName: "registry-node-config",`,
                `    certsDir: "/etc/containerd/certs.d", containerdConfig: "/etc/containerd/config.toml",`,
                `    caPem: pulumi.secret(${JSON.stringify(CA)}),`,
                `    registries: [{ host: "r.example:5000", server: "https://r.example:5000", endpoint: "https://10.96.0.10:5000", capabilities: ["pull"], serverIsOurs: true }],`,
                `});`,
            ].join("\n"),
        );
        try {
            const cloud = new FakeCloud({ clusterIP: () => "10.96.0.10" });
            await runProgram(cloud, { config: {}, entry });
            expect(cloud.one(T.secret).secretInputs).toContain("stringData");
            const ds = cloud.one(T.ds);
            expect(ds.secretInputs).not.toContain("spec");
            expect(ds.inputs.spec.template.metadata.annotations["cluster-registry/checksum"]).toMatch(/^[0-9a-f]{64}$/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
