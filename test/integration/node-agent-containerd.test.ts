/**
 * No silent node (issue #9): the DaemonSet's own script, under busybox, runs containerd-check.sh on
 * the node's containerd config (the distributions' real files, test/fixtures/containerd) mounted as
 * the DaemonSet mounts it. A node whose containerd will not read certs.d gets the files but its pod
 * is never ready, so the provider's rollout await fails `pulumi up` naming the DaemonSet; the log
 * says in one line what to change. `containerdCheck: warn` logs the same line and is ready.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeEach, expect, test } from "vitest";
import { FakeCloud } from "../support/fake-cloud";
import { describeNodeAgent } from "./describe-integration";
import { FakeKubeApi, nodeScript, nodeWorkspace, waitApplied } from "./harness/node";
import { stopAll, waitFor } from "./harness/procs";
import { deploy, tempDir } from "./support";

const HOSTED_IP = "10.96.0.10";
const FIXTURES = path.resolve(__dirname, "../fixtures/containerd");
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), "utf8");
const cloudWithIP = () => new FakeCloud({ clusterIP: () => HOSTED_IP });
/** The one line the check prints for kind before v0.31 (no config_path), as the node names its config. */
const NO_CONFIG_PATH =
    'node-config: not ready: containerd-check: containerd reads no hosts.toml (config_path is empty or absent in /etc/containerd/config.toml): set config_path = "/etc/containerd/certs.d" in [plugins."io.containerd.grpc.v1.cri".registry] and restart containerd; on kind, create the cluster with this stack\'s kindClusterConfig output';

describeNodeAgent("the node agent checks that containerd will read what it writes", () => {
    let work: string;
    let certs: string;
    let api: FakeKubeApi;

    beforeEach(async () => {
        const ws = await nodeWorkspace(tempDir("crcc-"));
        ({ work, certs, api } = ws);
        return ws.dispose;
    });
    afterAll(() => stopAll());

    /** A local directory standing for the node's containerd config directory, holding `text` as config.toml. */
    function configDir(text: string | undefined): string {
        const dir = fs.mkdtempSync(path.join(work, "etc-containerd-"));
        if (text !== undefined) fs.writeFileSync(path.join(dir, "config.toml"), text);
        return dir;
    }

    test("a node whose containerd reads no certs.d gets the files but is never ready, and says in one line what to change; fixed, it becomes ready", async () => {
        const cloud = cloudWithIP();
        await deploy(HOSTED_IP, {}, cloud);
        const dir = configDir(fixture("kind-v0.27.toml"));
        const pod = nodeScript(cloud, work, certs, api, { configDir: dir });
        const ready = path.join(pod.env.RUN_DIR, "ready");
        // Re-applying (and re-checking) every second instead of every 300.
        const proc = pod.start(path.join(work, "pod.log"), { REAPPLY_SECONDS: "1" });
        await waitApplied(proc);
        expect(fs.readdirSync(certs)).toContain("registry.registry.svc.cluster.local:5000");
        await waitFor(() => proc.log().includes("not ready"), 5000, "the check's line", { proc });
        // Three re-applies later: still running, still not ready, the line said once.
        await new Promise((r) => setTimeout(r, 3500));
        expect(proc.hasExited()).toBe(false);
        expect(fs.existsSync(ready)).toBe(false);
        const lines = proc.log().split("\n");
        expect(lines.filter((l) => l.includes("containerd-check"))).toEqual([NO_CONFIG_PATH]);

        // The user follows it (and restarts containerd): the next re-apply finds it fixed.
        fs.writeFileSync(path.join(dir, "config.toml"), fixture("kind-v0.31.toml"));
        await waitFor(() => fs.existsSync(ready), 5000, "the pod to become ready", { proc });
        expect(proc.log()).toContain("node-config: containerd now reads /etc/containerd/certs.d");
    });

    test("containerdCheck: warn logs the same line and is ready", async () => {
        const cloud = cloudWithIP();
        await deploy(HOSTED_IP, { "cluster-registry:containerdCheck": "warn" }, cloud);
        const pod = nodeScript(cloud, work, certs, api, { configDir: configDir(fixture("kind-v0.27.toml")) });
        const proc = pod.start(path.join(work, "pod.log"));
        await waitApplied(proc);
        await waitFor(() => fs.existsSync(path.join(pod.env.RUN_DIR, "ready")), 5000, "the pod to become ready", { proc });
        expect(proc.log()).toContain(NO_CONFIG_PATH.replace("not ready:", "warning (containerdCheck: warn):"));
    });

    test("a config that reads certs.d is ready with nothing to say: kind v0.31, EKS AL2023, and k3s on k3d", async () => {
        for (const [env, file] of [
            ["kind", "kind-v0.31.toml"],
            ["eks", "eks-al2023-containerd2.toml"],
            ["k3d", "k3s-containerd2.toml"],
        ]) {
            const cloud = cloudWithIP();
            await deploy(HOSTED_IP, { "cluster-registry:environment": env }, cloud);
            const pod = nodeScript(cloud, work, certs, api, { configDir: configDir(fixture(file)) });
            const proc = pod.start(path.join(work, `${env}.log`));
            await waitApplied(proc);
            await waitFor(() => fs.existsSync(path.join(pod.env.RUN_DIR, "ready")), 5000, `${env}: the pod to become ready`, { proc });
            expect(proc.log(), env).not.toContain("containerd-check");
            await proc.stop();
        }
    });

    test("a node whose certs.d is not the one containerd reads (k3s config, kind paths) names both directories", async () => {
        const cloud = cloudWithIP();
        await deploy(HOSTED_IP, {}, cloud);
        const pod = nodeScript(cloud, work, certs, api, { configDir: configDir(fixture("k3s-containerd2.toml")) });
        const proc = pod.start(path.join(work, "pod.log"));
        await waitFor(() => proc.log().includes("not ready"), 10_000, "the check's line", { proc });
        expect(proc.log()).toContain(
            "node-config: not ready: containerd-check: containerd reads hosts.toml from /var/lib/rancher/k3s/agent/etc/containerd/certs.d, not /etc/containerd/certs.d: add /etc/containerd/certs.d to config_path",
        );
        expect(fs.existsSync(path.join(pod.env.RUN_DIR, "ready"))).toBe(false);
    });

    test("a config directory without the config file is not ready either, naming the node's file", async () => {
        const cloud = cloudWithIP();
        await deploy(HOSTED_IP, {}, cloud);
        const pod = nodeScript(cloud, work, certs, api, { configDir: configDir(undefined) });
        const proc = pod.start(path.join(work, "pod.log"));
        await waitFor(() => proc.log().includes("not ready"), 10_000, "the check's line", { proc });
        expect(proc.log()).toContain("node-config: not ready: containerd-check: cannot read containerd config /etc/containerd/config.toml");
        expect(fs.existsSync(path.join(pod.env.RUN_DIR, "ready"))).toBe(false);
    });
});
