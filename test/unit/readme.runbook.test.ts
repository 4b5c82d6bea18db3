/**
 * README.md's Runbook, checked against the program so it cannot drift: the names in its `kubectl`
 * commands are those of the objects the program makes, its log lines are the agent's own, its URNs
 * are resources of the dev stack (as the engine names them), each rotation rolls what it says, and
 * its removal, run literally on a temporary node the real agent configured from the program's own
 * files, leaves the node as it was found.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { NODE_AGENT_SCRIPT_PATH, REAPPLY_SECONDS } from "../../components/node-config";
import { FakeCloud, RecordedResource } from "../support/fake-cloud";
import { cloudWithServiceIps, runWithServiceIps } from "../support/program";
import { ROOT, stackConfig } from "../support/stacks";
import { nodeState } from "../integration/harness/node-tree";

const README = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
const AGENT_DIR = path.dirname(NODE_AGENT_SCRIPT_PATH);

/** The text of a `##` section (or a `###` inside it), up to the next heading of its level or above. */
function section(text: string, heading: string): string {
    const level = heading.match(/^#+/)![0].length;
    const at = text.indexOf(`\n${heading}\n`);
    if (at < 0) throw new Error(`README.md has no "${heading}"`);
    const lines = text.slice(at + heading.length + 2).split("\n");
    // A `# comment` in a code block is no heading.
    let fenced = false;
    const end = lines.findIndex((l) => {
        if (/^\s*```/.test(l)) fenced = !fenced;
        return !fenced && new RegExp(`^#{1,${level}} `).test(l);
    });
    return (end < 0 ? lines : lines.slice(0, end)).join("\n");
}
const RUNBOOK = section(README, "## Runbook");

/** Rows of the first Markdown table in `text`, as cells (header and separator left out). */
function tableRows(text: string): string[][] {
    const lines = text.split("\n").filter((l) => l.startsWith("|"));
    return lines.slice(2).map((l) =>
        l
            .slice(1, -1)
            .split(/(?<!\\)\|/)
            .map((c) => c.trim()),
    );
}
const codeSpans = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);

const T = {
    daemonSet: "kubernetes:apps/v1:DaemonSet",
    deployment: "kubernetes:apps/v1:Deployment",
    configMap: "kubernetes:core/v1:ConfigMap",
    secret: "kubernetes:core/v1:Secret",
};

/** What the node agent's DaemonSet is called and runs with, as the program makes it. */
function agentOf(cloud: FakeCloud) {
    const ds = cloud.one(T.daemonSet);
    const pod = ds.inputs.spec.template;
    const [container] = pod.spec.containers;
    const env = (name: string) => container.env.find((e: any) => e.name === name)?.value;
    const certsVolume = pod.spec.volumes.find((v: any) => v.name === "certs-d");
    return {
        namespace: ds.inputs.metadata.namespace as string,
        name: ds.inputs.metadata.name as string,
        container: container.name as string,
        image: container.image as string,
        podLabels: pod.metadata.labels as Record<string, string>,
        owner: env("OWNER") as string,
        certsDir: certsVolume.hostPath.path as string,
        certsMount: container.volumeMounts.find((m: any) => m.name === "certs-d").mountPath as string,
        scripts: cloud.one(T.configMap, "node-config-script"),
        files: cloud.one(T.secret, "node-config-files").inputs.stringData as Record<string, string>,
    };
}

/**
 * The URN the engine gives each resource, by the fake's URN for it. The engine qualifies a type with
 * its parent's whole chain (`ClusterRegistry$Registry$ServerCertificate$tls:...`, the root stack left
 * out: the SDK's `createUrn`); Pulumi's own mocks give only the parent's type. The chain is rebuilt
 * here from the last parent type, which is right whichever the fake gives: each component type here
 * always has the same parents.
 */
function engineUrns(cloud: FakeCloud, stack: string): Map<string, string> {
    const chains = new Map<string, Set<string>>();
    const urns = new Map<string, string>();
    for (const r of cloud.resources) {
        const [, project, qualified] = r.urn.split("::");
        const types = qualified.split("$");
        const parent = types.length > 1 ? types[types.length - 2] : undefined;
        let chain = r.type;
        if (parent !== undefined && parent !== "pulumi:pulumi:Stack") {
            const parentChains = [...(chains.get(parent) ?? [])];
            if (parentChains.length !== 1) throw new Error(`${r.urn}: its parent's type ${parent} has ${parentChains.length} chains, not one`);
            chain = `${parentChains[0]}$${r.type}`;
        }
        chains.set(r.type, new Set([...(chains.get(r.type) ?? []), chain]));
        urns.set(`urn:pulumi:${stack}::${project}::${chain}::${r.name}`, r.urn);
    }
    return urns;
}

/** Each stack in the README's words. */
const STACK_OF_ENVIRONMENT: Record<string, string> = { kind: "dev", k3d: "k3d", EKS: "eks" };

async function stack(name: string, extra: Record<string, string> = {}) {
    return (await runWithServiceIps({ ...stackConfig(name), ...extra })).cloud;
}

describe("the Runbook's kubectl commands name what the program makes", () => {
    const commands = [...RUNBOOK.matchAll(/kubectl ([^`\n)]*)/g)].map((m) => m[1]);

    test("the rule the Runbook gives for other stacks' names is the program's", async () => {
        const agent = agentOf(await stack("dev", { "cluster-registry:namespace": "team", "cluster-registry:serviceName": "reg" }));
        expect([agent.namespace, agent.name, agent.owner]).toEqual(["team-node-agent", "reg-node-config", "team.reg"]);
        expect(RUNBOOK).toContain("`<namespace>-node-agent`, as the DaemonSet `<serviceName>-node-config`");
        expect(RUNBOOK).toContain("`.cluster-registry.<namespace>.<serviceName>`");
    });

    test("every namespace, DaemonSet, label, container, mount and image in them is the dev stack's", async () => {
        const agent = agentOf(await stack("dev"));
        expect(commands.length).toBeGreaterThanOrEqual(9);
        const checked = new Set<string>();
        /** `what` in `command` (the first group of `re`), if there, must be `expected`. */
        const check = (command: string, what: string, re: RegExp, expected: string) => {
            const found = command.match(re)?.[1];
            if (found === undefined) return;
            expect(found, `${what} in: kubectl ${command}`).toBe(expected);
            checked.add(what);
        };
        for (const c of commands) {
            check(c, "namespace", /-n (\S+)/, agent.namespace);
            check(c, "namespace", /delete namespace (\S+)/, agent.namespace);
            check(c, "daemonset", /daemonset[/ ](\S+)/, agent.name);
            check(c, "container", / -c (\S+)/, agent.container);
            check(c, "image", /--image=(\S+)/, agent.image);
            const label = c.match(/-l (\S+)=/)?.[1];
            if (label !== undefined) {
                check(c, "label", /-l [^=]+=(\S+)/, agent.podLabels[label]);
                // The ConfigMap with the scripts carries the pods' labels too.
                if (c.includes("configmap")) check(c, "configmap", /-l [^=]+=(\S+)/, agent.scripts.inputs.metadata.labels[label]);
            }
            if (c.includes(" exec ")) {
                expect(c, "the pod's mount of certsDir").toContain(`cd ${agent.certsMount} `);
                expect(c).toContain(`.cluster-registry.${agent.owner}`);
                checked.add("exec");
            }
        }
        expect([...checked].sort()).toEqual(["configmap", "container", "daemonset", "exec", "image", "label", "namespace"]);
    });

    test("the state directory and certsDir paths it names are each environment's", async () => {
        for (const [environment, name] of Object.entries(STACK_OF_ENVIRONMENT)) {
            const agent = agentOf(await stack(name));
            expect(RUNBOOK, environment).toContain(`\`${agent.certsDir}\``);
            expect(RUNBOOK).toContain(`\`.cluster-registry.${agent.owner}/\``);
        }
    });
});

test("every link in the Runbook leads to a heading of the README", () => {
    // GitHub's anchors: lower case, punctuation dropped, spaces as hyphens; none inside code blocks.
    const headings = README.replace(/```[\s\S]*?```/g, "")
        .split("\n")
        .filter((l) => /^#{2,4} /.test(l))
        .map((l) =>
            l
                .replace(/^#+ /, "")
                .toLowerCase()
                .replace(/[^a-z0-9 -]/g, "")
                .replace(/ /g, "-"),
        );
    const anchors = [...RUNBOOK.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
    expect(anchors.length).toBeGreaterThanOrEqual(5);
    for (const a of anchors) expect(headings, a).toContain(a);
    expect(README).toContain("](#removing-the-agents-files-by-hand)");
});

describe("the Runbook's log lines are the agent's", () => {
    const scripts = fs
        .readdirSync(AGENT_DIR)
        .filter((f) => f.endsWith(".sh"))
        .flatMap((f) => fs.readFileSync(path.join(AGENT_DIR, f), "utf8").split("\n"))
        .filter((l) => /\b(log|say|die) "/.test(l));
    const rows = tableRows(section(RUNBOOK, "### The node agent's log"));

    /** A line as the README quotes it: `<x>` stands for any text, a trailing `...` for the rest of the line. */
    const pattern = (quoted: string) => {
        const open = quoted.endsWith("...");
        const parts = quoted.replace(/ ?\.\.\.$/, "").split(/<[^>]+>/);
        return new RegExp(parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".+") + (open ? "" : '"'));
    };

    test.each(rows.flatMap((row) => codeSpans(row[0])))("`%s` is a line the agent logs", (quoted) => {
        const re = pattern(quoted);
        expect(
            scripts.some((l) => re.test(l)),
            `${re}`,
        ).toBe(true);
    });

    test("every line the agent logs is in the table", () => {
        const quoted = rows.flatMap((row) => codeSpans(row[0])).map(pattern);
        const logged = scripts.filter((l) => /\blog "/.test(l));
        expect(logged.length).toBeGreaterThanOrEqual(40);
        for (const l of logged)
            expect(
                quoted.some((re) => re.test(l)),
                l.trim(),
            ).toBe(true);
    });

    test("every line starts with the prefix the Runbook gives, and the re-apply interval is the program's", () => {
        expect(fs.readFileSync(NODE_AGENT_SCRIPT_PATH, "utf8")).toContain('log() { echo "node-config: $*"; }');
        expect(RUNBOOK).toContain("Every line starts with `node-config: `");
        expect(RUNBOOK).toContain(`\`applied; re-applying every ${REAPPLY_SECONDS}s\``);
        expect(rows.length).toBeGreaterThanOrEqual(15);
    });
});

/** Pod templates with each Secret or ConfigMap they name replaced by its content's hash. */
function effectiveTemplates(cloud: FakeCloud): Record<string, string> {
    const contents = new Map<string, string>();
    for (const r of [...cloud.byType(T.secret), ...cloud.byType(T.configMap)]) {
        const data = JSON.stringify([r.inputs.data ?? null, r.inputs.stringData ?? null]);
        contents.set(r.outputs.metadata.name, crypto.createHash("sha256").update(data).digest("hex"));
    }
    const out: Record<string, string> = {};
    for (const w of [...cloud.byType(T.deployment), ...cloud.byType(T.daemonSet)]) {
        let text = JSON.stringify(w.inputs.spec.template);
        for (const [name, hash] of contents) text = text.split(`"${name}"`).join(`"${name}#${hash}"`);
        out[w.name] = text;
    }
    return out;
}

/**
 * The workloads whose pods a second run rolls. The Kubernetes provider replaces a Secret or ConfigMap
 * whose data changes (they are immutable to it unless enableSecretMutable / enableConfigMapMutable),
 * under a new auto-name, so a template that names one changes; the fake keeps names, so the names
 * are compared by content here.
 */
function rolled(before: Record<string, string>, after: Record<string, string>): string[] {
    return Object.keys(after)
        .filter((w) => before[w] !== after[w])
        .sort();
}

describe("the Runbook's rotations", () => {
    const rows = tableRows(section(RUNBOOK, "### Rotating a credential or the CA"));
    const replaced = rows.filter((r) => /--replace '/.test(r[1]));
    const urnOf = (cell: string) => cell.match(/--replace '([^']+)'/)![1];

    test("every URN the Runbook quotes is a resource of the dev stack, as the engine names it", async () => {
        const urns = engineUrns(await stack("dev"), "dev");
        // `urn:pulumi:<stack>::...` in prose is a pattern, not a URN.
        const quoted = [...RUNBOOK.matchAll(/urn:pulumi:[^'`\s]+/g)].map((m) => m[0]).filter((u) => !u.includes("<"));
        expect(quoted.length).toBeGreaterThanOrEqual(6);
        for (const urn of quoted) expect([...urns.keys()], urn).toContain(urn);
    });

    test.each(replaced.map((r) => [r[0], r[1], r[2]]))(
        "%s: `pulumi up --replace` rolls what the table says, and nothing else",
        async (_what, command, rolls) => {
            const cloud = cloudWithServiceIps();
            const config = stackConfig("dev");
            await runWithServiceIps(config, cloud);
            const before = effectiveTemplates(cloud);
            const urns = engineUrns(cloud, "dev");
            const urn = urnOf(command);
            cloud.replaceOnNextRun(urns.get(urn)!);
            await runWithServiceIps(config, cloud);
            const after = effectiveTemplates(cloud);

            const caches = Object.keys(after).filter((w) => w.startsWith("registry-cache-"));
            const claimed = new Set<string>();
            if (/every registry/.test(rolls)) ["registry-hosted", ...caches].forEach((w) => claimed.add(w));
            if (/the hosted registry/.test(rolls)) claimed.add("registry-hosted");
            if (/every cache/.test(rolls)) caches.forEach((w) => claimed.add(w));
            if (/that registry/.test(rolls))
                claimed.add(
                    urn
                        .split("::")
                        .pop()!
                        .replace(/-(http-secret|tls-key)$/, ""),
                );
            if (/the node agent/.test(rolls)) claimed.add("registry-node-config");
            expect(claimed.size, rolls).toBeGreaterThan(0);
            expect(rolled(before, after)).toEqual([...claimed].sort());
        },
    );

    test("the pull identity's rotation rewrites the pull secret in each of pullSecretNamespaces, a Secret with a fixed name (so deleted, then created)", async () => {
        const row = replaced.find((r) => r[0].startsWith("the pull secret's identity"))!;
        expect(row[2]).toContain("the pull secret in each of `pullSecretNamespaces` is replaced (deleted, then created: it has a fixed name)");
        const cloud = cloudWithServiceIps();
        const config = stackConfig("eks"); // pullSecretNamespaces: [default]
        await runWithServiceIps(config, cloud);
        const secret = () => cloud.byType(T.secret).find((r) => r.inputs.type === "kubernetes.io/dockerconfigjson")!;
        const before = secret().inputs;
        cloud.replaceOnNextRun(engineUrns(cloud, "eks").get(urnOf(row[1]).replace("urn:pulumi:dev::", "urn:pulumi:eks::"))!);
        await runWithServiceIps(config, cloud);
        const after = secret().inputs;
        expect(after.metadata).toMatchObject({ name: "registry-pull", namespace: "default" });
        expect(after.metadata.name).toBe(before.metadata.name);
        expect(after.stringData[".dockerconfigjson"]).not.toBe(before.stringData[".dockerconfigjson"]);
    });

    test("a given password changed in config rolls the hosted registry alone", async () => {
        const cloud = cloudWithServiceIps();
        const config = (p: string) => ({ ...stackConfig("dev"), "cluster-registry:userPasswords": JSON.stringify([`admin:${p}`]) });
        await runWithServiceIps(config("correct-horse-battery-1"), cloud);
        const before = effectiveTemplates(cloud);
        await runWithServiceIps(config("correct-horse-battery-2"), cloud);
        expect(rolled(before, effectiveTemplates(cloud))).toEqual(["registry-hosted"]);
        expect(RUNBOOK).toContain("pulumi config set --secret --path 'cluster-registry:userPasswords[0]' 'admin:<new password>'");
    });
});

/** The agent needs a POSIX sh with `local`, flock(1) and the usual file tools: any Linux machine. */
const runnable = process.platform === "linux" && spawnSync("sh", ["-c", "command -v flock && command -v sha256sum"]).status === 0;

describe.skipIf(!runnable)("the Runbook's removal, run literally on a node the agent configured", () => {
    const roots: string[] = [];
    afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

    const block = (() => {
        const at = RUNBOOK.indexOf("<!-- tested: readme.runbook.test.ts");
        const m = /```sh\n([\s\S]*?)```/.exec(RUNBOOK.slice(at));
        if (at < 0 || m === null) throw new Error("the Runbook has no tested removal block");
        return m[1].replace(/^ {3}/gm, "");
    })();
    /** Each `CERTS_DIR=... remove` line with the environments its comment names. */
    const lines = block
        .split("\n")
        .map((l, i, all) => ({ line: l, comment: all[i - 1] ?? "" }))
        .filter((l) => l.line.startsWith("CERTS_DIR="))
        .map(({ line, comment }) => ({
            certsDir: line.match(/CERTS_DIR=(\S+)/)![1],
            owner: line.match(/OWNER=(\S+)/)![1],
            environments: Object.keys(STACK_OF_ENVIRONMENT).filter((e) => comment.includes(e)),
        }));
    const scriptsDir = block.match(/^cd (\S+)$/m)![1];

    test("it has one line per certsDir, with each environment's certsDir and OWNER", async () => {
        expect(lines.flatMap((l) => l.environments).sort()).toEqual(Object.keys(STACK_OF_ENVIRONMENT).sort());
        for (const l of lines) {
            for (const e of l.environments) {
                const agent = agentOf(await stack(STACK_OF_ENVIRONMENT[e]));
                expect(l.certsDir, e).toBe(agent.certsDir);
                expect(l.owner, e).toBe(agent.owner);
            }
        }
    });

    /** A node (a temp root) with someone else's docker.io files and both certsDirs, as it was before the stack. */
    function node() {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "runbook-node-"));
        roots.push(root);
        for (const l of lines) fs.mkdirSync(path.join(root, l.certsDir), { recursive: true });
        return root;
    }
    const theirs = {
        "docker.io/hosts.toml": '# File generated by k3s. DO NOT EDIT.\nserver = "https://registry-1.docker.io"\n',
        "docker.io/ca.crt": "their CA\n",
    };
    function seed(certs: string) {
        for (const [rel, content] of Object.entries(theirs)) {
            fs.mkdirSync(path.dirname(path.join(certs, rel)), { recursive: true });
            fs.writeFileSync(path.join(certs, rel), content);
            fs.chmodSync(path.join(certs, rel), 0o644);
        }
    }
    /** The agent's `apply` with the program's files Secret, as the DaemonSet's pod runs it. */
    function apply(root: string, certsDir: string, owner: string, files: Record<string, string>, pod: string) {
        const dir = fs.mkdtempSync(path.join(root, "node-files-"));
        for (const [k, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, k), v);
        const r = spawnSync("sh", [NODE_AGENT_SCRIPT_PATH, "apply"], {
            env: { PATH: process.env.PATH, CERTS_DIR: path.join(root, certsDir), FILES_DIR: dir, OWNER: owner, POD_UID: pod },
            encoding: "utf8",
        });
        fs.rmSync(dir, { recursive: true });
        expect(r.status, r.stdout + r.stderr).toBe(0);
    }
    /** The scripts in the Runbook's directory, written from the ConfigMap's data as its kubectl loop does. */
    function copyScripts(root: string, scripts: RecordedResource) {
        fs.mkdirSync(path.join(root, scriptsDir), { recursive: true });
        for (const [f, content] of Object.entries(scripts.inputs.data as Record<string, string>)) fs.writeFileSync(path.join(root, scriptsDir, f), content);
    }
    /** The block as written, every absolute path moved under the node's root: no root needed. */
    function runBlock(root: string) {
        const text = block.replace(/(^|[\s=])(\/(?:etc|var|tmp)\/\S*)/gm, (_m, pre, p) => `${pre}${root}${p}`);
        const r = spawnSync("sh", ["-e", "-c", text], { env: { PATH: process.env.PATH }, encoding: "utf8" });
        return { code: r.status, out: r.stdout + r.stderr };
    }
    /** The node as containerd and the admin see it, without the scripts the admin copied there. */
    const seen = (root: string) =>
        Object.fromEntries(Object.entries(nodeState(root)).filter(([p]) => !(scriptsDir.slice(1).startsWith(p) || p.startsWith(scriptsDir.slice(1)))));

    const kubectl = spawnSync("kubectl", ["version", "--client"]).status === 0;

    test.skipIf(!kubectl)(
        "the Runbook's kubectl loop writes each file of the scripts' ConfigMap byte for byte (kubectl's own go-templates, offline)",
        async () => {
            const agent = agentOf(await stack("dev"));
            const loop = RUNBOOK.match(/^ *mkdir node-agent\n[\s\S]*?^ *done$/m)?.[0];
            expect(loop, "the loop that copies the ConfigMap's files").toBeDefined();
            const root = node();
            const data = path.join(root, "configmap-data");
            fs.mkdirSync(data);
            for (const [f, content] of Object.entries(agent.scripts.inputs.data as Record<string, string>)) fs.writeFileSync(path.join(data, f), content);
            // The ConfigMap as the API would return it, made by kubectl itself from the same data.
            const object = `create configmap script --from-file=${data} --dry-run=client`;
            const text = loop!.replace(/^ *cm=.*$/m, "cm=unused").replace(/kubectl -n \S+ get "\$cm"/g, `kubectl ${object}`);
            const r = spawnSync("sh", ["-e", "-c", text], { cwd: root, env: { PATH: process.env.PATH, KUBECONFIG: "/dev/null" }, encoding: "utf8" });
            expect(r.status, r.stderr).toBe(0);
            expect(fs.readdirSync(path.join(root, "node-agent")).sort()).toEqual(Object.keys(agent.scripts.inputs.data).sort());
            for (const [f, content] of Object.entries(agent.scripts.inputs.data as Record<string, string>)) {
                expect(fs.readFileSync(path.join(root, "node-agent", f), "utf8"), f).toBe(content);
            }
        },
    );

    test.each(Object.entries(STACK_OF_ENVIRONMENT))("%s: after a real apply, the block restores the node as it was found, and says so", async (_e, name) => {
        const cloud = await stack(name);
        const agent = agentOf(cloud);
        const root = node();
        seed(path.join(root, agent.certsDir));
        const before = seen(root);
        apply(root, agent.certsDir, agent.owner, agent.files, "pod-1");
        const applied = seen(root);
        expect(applied[path.join(agent.certsDir, "docker.io/hosts.toml").slice(1)]).not.toBe(
            before[path.join(agent.certsDir, "docker.io/hosts.toml").slice(1)],
        );
        expect(applied[path.join(agent.certsDir, `.cluster-registry.${agent.owner}/`).slice(1)]).toBe("700");

        copyScripts(root, agent.scripts);
        const r = runBlock(root);
        expect(r.code, r.out).toBe(0);
        expect(r.out).toContain("node-config: node restored");
        expect(seen(root)).toEqual(before);

        const again = runBlock(root);
        expect(again.code, again.out).toBe(0);
        expect(again.out.match(/nothing to remove/g)).toHaveLength(lines.length);
        expect(seen(root)).toEqual(before);
    });

    test("a CA rotated by the Runbook's --replace reaches the node: the agent writes the new CA beside every hosts.toml, and the block still restores the node", async () => {
        const cloud = cloudWithServiceIps();
        const first = await runWithServiceIps(stackConfig("dev"), cloud);
        const agent = agentOf(cloud);
        const root = node();
        const certs = path.join(root, agent.certsDir);
        seed(certs);
        const before = seen(root);
        apply(root, agent.certsDir, agent.owner, agent.files, "pod-1");

        const caUrn = [...RUNBOOK.matchAll(/urn:pulumi:[^'`\s]+/g)].map((m) => m[0]).find((u) => u.endsWith("::registry-ca-key"))!;
        cloud.replaceOnNextRun(engineUrns(cloud, "dev").get(caUrn)!);
        const second = await runWithServiceIps(stackConfig("dev"), cloud);
        expect(second.outputs.caCertPem).not.toBe(first.outputs.caCertPem);
        // The rollout's new pod applies the new files.
        apply(root, agent.certsDir, agent.owner, agentOf(cloud).files, "pod-2");
        const cas = fs.readdirSync(certs).filter((d) => fs.existsSync(path.join(certs, d, "ca.crt")));
        expect(cas.length).toBeGreaterThanOrEqual(5);
        for (const d of cas) expect(fs.readFileSync(path.join(certs, d, "ca.crt"), "utf8"), d).toBe(second.outputs.caCertPem);

        copyScripts(root, agent.scripts);
        const r = runBlock(root);
        expect(r.code, r.out).toBe(0);
        expect(seen(root)).toEqual(before);
    });
});
