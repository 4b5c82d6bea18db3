/**
 * Shared set-up for integration tests: run the program under the faithful fakes, then start the
 * real registry from the Deployment it generated, and stand in for kube-proxy and port-forward.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { describe } from "vitest";
import { FakeCloud, RecordedResource, runProgram } from "../support/fake-cloud";
import { ENTRY, stackConfig } from "../support/stacks";
import { materialize, rebaseYamlPaths } from "./harness/pod";
import { RegistryHandle, startRegistry } from "./harness/registry";
import { isCI, missingForIntegration } from "./harness/tools";

/** `describe` that skips with one line saying what is missing, except in CI where it must run. */
export function describeIntegration(name: string, fn: () => void): void {
    const missing = missingForIntegration();
    if (missing && isCI()) throw new Error(`CI must run the integration tests, but: ${missing}`);
    if (missing) {
        console.warn(missing);
        describe.skip(name, fn);
    } else describe(name, fn);
}

/** A fresh temp dir, short enough for unix socket paths. */
export function tempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Deployed {
    cloud: FakeCloud;
    outputs: Record<string, any>;
    /** What the first user's pull secret holds for the in-cluster host. */
    pullAuth: { username: string; password: string };
}

/** Runs the program (dev stack plus overrides) with the Service's ClusterIP chosen by the test. */
export async function deploy(clusterIP: string, config: Record<string, string> = {}, cloud = new FakeCloud({ clusterIP: () => clusterIP })): Promise<Deployed> {
    const { outputs } = await runProgram(cloud, { config: { ...stackConfig("dev"), ...config }, entry: ENTRY });
    const auths = JSON.parse(outputs.dockerConfigJson as string).auths;
    const entry = auths[outputs.host as string];
    return { cloud, outputs, pullAuth: { username: entry.username, password: entry.password } };
}

/**
 * Starts the real distribution registry from a registry Deployment: its command, env and config
 * file, with every mounted Secret and ConfigMap written at its mount path under `root`. Only the
 * listen address differs: the Service's DNAT to the pod becomes the registry listening on
 * ClusterIP:port itself.
 */
export async function startRegistryFromDeployment(
    cloud: FakeCloud,
    deployment: RecordedResource,
    root: string,
    listen: string,
    caFile?: string,
    /** Test-only additions to the pod's environment, each with a reason at the call site. */
    extraEnv: Record<string, string> = {},
): Promise<RegistryHandle> {
    const local = materialize(cloud, deployment, root);
    const [program, verb, configPath] = local.container.command as string[];
    if (program !== "registry" || verb !== "serve") throw new Error(`unexpected registry command ${local.container.command}`);
    const configYaml = rebaseYamlPaths(fs.readFileSync(local.rebase(configPath), "utf8"), local.rebase);
    return startRegistry({ configYaml, env: { ...local.env, ...extraEnv, REGISTRY_HTTP_ADDR: listen }, workDir: root, addr: listen, caFile });
}

/** A TCP forwarder, as `kubectl port-forward` is: listens on `from`, connects to `to`. */
export async function portForward(from: { host: string; port: number }, to: { host: string; port: number }): Promise<{ close(): Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
        const upstream = net.connect(to.port, to.host);
        for (const s of [client, upstream]) {
            sockets.add(s);
            s.on("close", () => sockets.delete(s));
            s.on("error", () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(from.port, from.host, resolve));
    return {
        close: () =>
            new Promise<void>((resolve) => {
                for (const s of sockets) s.destroy();
                server.close(() => resolve());
            }),
    };
}
