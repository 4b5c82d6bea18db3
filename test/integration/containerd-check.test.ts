/**
 * components/node-agent/containerd-check.sh decides whether a node's containerd will read the hosts.toml
 * files the agent writes. First its decision on the real config files of kind, EKS AL2023 and k3s
 * (test/fixtures/containerd, each citing its source) and on the parsing a hand-edited file needs, run
 * under busybox as in the agent's image. Then the proof against containerd 2.x itself: for each config
 * shape, the check on the very file containerd runs with, and a CRI pull through it; "will not read"
 * must be exactly the shapes whose pull ignores hosts.toml.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { criPull } from "./harness/cri";
import { ContainerdHandle } from "./harness/containerd";
import { buildOciImage } from "./harness/oci";
import { runCommand, which } from "./harness/procs";
import { describeContainerd } from "./describe-integration";
import { LoopbackCluster, tempDir } from "./support";

const SCRIPT = path.resolve(__dirname, "../../components/node-agent/containerd-check.sh");
const FIXTURES = path.resolve(__dirname, "../fixtures/containerd");
const ETC = "/etc/containerd/certs.d";
const K3S = "/var/lib/rancher/k3s/agent/etc/containerd/certs.d";
const BUSYBOX = which("busybox");
/** This file's scratch dir, removed at the end. */
const SCRATCH = tempDir("cchk-");
afterAll(() => fs.rmSync(SCRATCH, { recursive: true, force: true }));

/** Runs the check as the agent would: busybox sh, its applets first on PATH. */
async function check(config: string, certsDir: string, version?: string): Promise<{ code: number | null; out: string; err: string }> {
    const args = [SCRIPT, config, certsDir, ...(version === undefined ? [] : [version])];
    const r = BUSYBOX ? await runCommand(BUSYBOX, ["sh", ...args], { env: { PATH: busyboxApplets() } }) : await runCommand("sh", args);
    return { code: r.code, out: r.stdout, err: r.stderr };
}

let applets: string | undefined;
/** A PATH of busybox applets only, so awk, sed and grep are busybox's, as in the image. */
function busyboxApplets(): string {
    if (applets) return applets;
    applets = fs.mkdtempSync(path.join(SCRATCH, "bb-"));
    for (const a of ["sh", "awk", "sed", "grep", "printf", "echo", "cat", "["]) fs.symlinkSync(BUSYBOX!, path.join(applets, a));
    return applets;
}

const fixture = (name: string) => path.join(FIXTURES, name);

/** Writes a config made up for one parsing case. */
function configFile(text: string): string {
    const f = path.join(fs.mkdtempSync(path.join(SCRATCH, "cfg-")), "config.toml");
    fs.writeFileSync(f, text);
    return f;
}

describe("containerd-check.sh on the config files distributions write", () => {
    test("runs under busybox, as in the agent's image", () => {
        expect(BUSYBOX, "busybox is needed (apt-get install busybox)").not.toBeNull();
    });

    // [fixture, node certs dir, containerd version or none, exit code, what the one line must say]
    const cases: Array<[string, string, string | undefined, number, RegExp?]> = [
        ["kind-v0.31.toml", ETC, undefined, 0],
        ["kind-v0.31.toml", ETC, "2.2.0", 0],
        ["kind-v0.27.toml", ETC, undefined, 1, /config_path is empty or absent.*kindClusterConfig/],
        ["kind-v0.27.toml", ETC, "1.7.24", 1, /set config_path = "\/etc\/containerd\/certs.d" in \[plugins."io.containerd.grpc.v1.cri".registry\]/],
        ["eks-al2023-containerd2.toml", ETC, undefined, 0],
        ["eks-al2023-containerd1.toml", ETC, undefined, 0],
        ["eks-al2023-containerd1.toml", ETC, "containerd github.com/containerd/containerd/v2 v2.1.4 abc", 0],
        ["k3s-containerd2.toml", K3S, undefined, 0],
        ["k3s-containerd1.toml", K3S, "1.7.27-k3s1", 0],
        [
            "k3s-containerd2.toml",
            ETC,
            undefined,
            1,
            /reads hosts.toml from \/var\/lib\/rancher\/k3s\/agent\/etc\/containerd\/certs.d, not \/etc\/containerd\/certs.d/,
        ],
        [
            "containerd2-two-dirs.toml",
            ETC,
            undefined,
            1,
            /containerd 2.x ignores hosts.toml when config_path names several directories.*set discard_unpacked_layers = true or use_local_image_pull = true in \[plugins."io.containerd.cri.v1.images"\]/,
        ],
        ["containerd2-two-dirs.toml", ETC, "1.7.24", 1, /cannot read .*version = 3 needs containerd 2.x/],
    ];
    for (const [file, dir, version, code, says] of cases) {
        test(`${file} with ${dir}${version ? ` on containerd ${version}` : ""}: ${code === 0 ? "reads" : "will not read"}`, async () => {
            const r = await check(fixture(file), dir, version);
            expect(r.err).toBe("");
            expect(r.code).toBe(code);
            if (code === 0) expect(r.out).toBe("");
            else {
                expect(r.out.trimEnd().split("\n"), "one line").toHaveLength(1);
                expect(r.out).toMatch(/^containerd-check: /);
                expect(r.out).toMatch(says!);
            }
        });
    }

    test("a version 2 file with two directories: fine on containerd 1.x, not when the version is unknown (2.x migrates it)", async () => {
        const f = configFile('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"\n');
        expect((await check(f, ETC, "1.6.20")).code).toBe(0);
        const unknown = await check(f, ETC);
        expect(unknown.code).toBe(1);
        expect(unknown.out).toMatch(
            /set discard_unpacked_layers = true in \[plugins."io.containerd.grpc.v1.cri".containerd\] \(or pass this node's containerd version if it is 1.x\)/,
        );
        expect((await check(f, ETC, "2.1.9")).code).toBe(1);
    });

    test("parses what hand-edited files hold: dotted keys, ' quotes, comments, odd spacing, trailing slashes, version 1 names", async () => {
        const reads = [
            // a dotted key at the top level (containerd issue 8053's file)
            'version = 2\nplugins."io.containerd.grpc.v1.cri".registry.config_path = "/etc/containerd/certs.d"\n',
            // single quotes, spaces in the header, a comment holding a # and a decoy path
            "version=3\n[ plugins . 'io.containerd.cri.v1.images' . registry ]   # config_path = '/nowhere'\n\tconfig_path='/etc/containerd/certs.d/'  # 'x#y'\n",
            // version 1 (no version key): plugins.cri
            '[plugins.cri.registry]\nconfig_path = "/etc/containerd/certs.d"\n',
            // two dirs with use_local_image_pull on a v3 file
            "version = 3\n[plugins.'io.containerd.cri.v1.images']\nuse_local_image_pull = true\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/etc/docker/certs.d:/etc/containerd/certs.d'\n",
        ];
        for (const text of reads) expect((await check(configFile(text), `${ETC}/`)).code, text).toBe(0);
        const wont = [
            // commented out
            'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  # config_path = "/etc/containerd/certs.d"\n',
            // a v2 key in a v3 file is not read by containerd 2.x
            'version = 3\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n',
            // the setting in another table does not count
            "version = 3\n[plugins.'io.containerd.transfer.v1.local']\nuse_local_image_pull = true\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n",
        ];
        for (const text of wont) expect((await check(configFile(text), ETC)).code, text).toBe(1);
    });

    test("containerd 2.2's default config_path (two directories) applies when the version says so and the file sets none", async () => {
        const f = configFile("version = 3\n[plugins.'io.containerd.cri.v1.images']\n  discard_unpacked_layers = true\n");
        expect((await check(f, ETC, "2.2.0")).code).toBe(0);
        expect((await check(f, ETC, "2.1.9")).code).toBe(1);
        expect((await check(f, ETC)).code).toBe(1);
    });

    test("usage errors and unreadable files exit 2 and say so on stderr", async () => {
        const none = await check("/nonexistent/config.toml", ETC);
        expect(none.code).toBe(2);
        expect(none.err).toMatch(/cannot read containerd config/);
        const badVersion = await check(fixture("kind-v0.31.toml"), ETC, "latest");
        expect(badVersion.code).toBe(2);
        const usage = BUSYBOX ? await runCommand(BUSYBOX, ["sh", SCRIPT, fixture("kind-v0.31.toml")]) : await runCommand("sh", [SCRIPT]);
        expect(usage.code).toBe(2);
        expect(usage.stderr).toMatch(/^usage: /);
    });
});

/** A node config shape run on containerd 2.x, and the node directory the agent writes to. */
interface Shape {
    name: string;
    toml: () => string;
    certsPath: string;
}

describeContainerd("2.x", "follows hosts.toml exactly when containerd-check.sh says it will", (build) => {
    const read = (f: string) => () => fs.readFileSync(fixture(f), "utf8");
    let defaultConfig = "";
    const shapes: Shape[] = [
        { name: "kind v0.31", toml: read("kind-v0.31.toml"), certsPath: ETC },
        { name: "kind v0.27-v0.30", toml: read("kind-v0.27.toml"), certsPath: ETC },
        { name: "EKS AL2023 (containerd 2.x template)", toml: read("eks-al2023-containerd2.toml"), certsPath: ETC },
        { name: "EKS AL2023 (containerd 1.7 template, migrated)", toml: read("eks-al2023-containerd1.toml"), certsPath: ETC },
        { name: "k3s (containerd 2.x template)", toml: read("k3s-containerd2.toml"), certsPath: K3S },
        { name: "k3s (containerd 1.7 template, migrated)", toml: read("k3s-containerd1.toml"), certsPath: K3S },
        { name: "two directories, neither setting", toml: read("containerd2-two-dirs.toml"), certsPath: ETC },
        { name: `\`containerd config default\` of ${build.version}`, toml: () => defaultConfig, certsPath: ETC },
    ];
    let cluster: LoopbackCluster;
    const containerds: ContainerdHandle[] = [];

    beforeAll(async () => {
        const generated = await runCommand(build.binary, ["config", "default"]);
        expect(generated.code, generated.stderr).toBe(0);
        defaultConfig = generated.stdout;
        cluster = await LoopbackCluster.start({ prefix: "cc-", nodeMode: "apply", containerd: false });
        const image = await buildOciImage(path.join(cluster.work, "oci"), { tag: "v1", layers: [{ files: { "app.txt": "checked\n" } }] });
        const push = await cluster.push(image, "demo/app:v1");
        expect(push.code, push.stderr).toBe(0);
        containerds.push(
            ...(await Promise.all(
                shapes.map((s, i) => cluster.startNodeContainerd(`c${i}`, { binary: build.binary, nodeConfig: { toml: s.toml(), certsPath: s.certsPath } })),
            )),
        );
    });

    afterAll(() => cluster?.stop());

    const verdicts: boolean[] = [];
    shapes.forEach((shape, i) => {
        test(`${shape.name}: the check's answer is what the pull does`, async () => {
            // The check on the file containerd runs with (paths moved here), with the version it runs.
            const onRunning = await check(containerds[i].configFile, cluster.nodeCerts, build.versionLine);
            // ... and on the distribution's own file, with the node's path and no version.
            const original = path.join(cluster.work, `original-${i}.toml`);
            fs.writeFileSync(original, shape.toml());
            const onNode = await check(original, shape.certsPath);
            expect(onNode.code, onNode.out).toBe(onRunning.code);

            let pulled: boolean;
            try {
                await criPull(containerds[i].socket, cluster.ref("demo/app:v1"), cluster.dep.pullAuth, { timeoutMs: 60_000 });
                pulled = true;
            } catch (e) {
                // Ignored hosts.toml: containerd looks the in-cluster name up in DNS.
                expect(String(e)).toMatch(/lookup registry\.\S+( on \S+)?: no such host/);
                pulled = false;
            }
            expect(onRunning.code === 0, onRunning.out).toBe(pulled);
            verdicts.push(pulled);
        });
    });

    test("both answers occur, so the comparison above proves something", () => {
        expect(verdicts).toHaveLength(shapes.length);
        expect(verdicts).toContain(true);
        expect(verdicts).toContain(false);
    });
});
