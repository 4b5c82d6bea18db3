/**
 * Shared set-up for integration tests: run the program under the faithful fakes, then start the
 * real registry from the Deployment it generated, and stand in for kube-proxy and port-forward.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { FakeCloud, RecordedResource, runProgram } from "../support/fake-cloud";
import { ENTRY, stackConfig } from "../support/stacks";
import { materialize, rebaseYamlPaths } from "./harness/pod";
import { freePort, runCommand } from "./harness/procs";
import { RegistryHandle, startRegistry } from "./harness/registry";

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

/** What a workstation keeps from the stack's outputs to push: the CA (a file, and a skopeo cert dir) and the authfile. */
export interface ClientFiles {
    caFile: string;
    certDir: string;
    /** The `dockerConfigJson` output, mode 0600; the test's temp dir is removed afterwards. */
    authfile: string;
}

export function writeClientFiles(outputs: Record<string, any>, dir: string): ClientFiles {
    const caFile = path.join(dir, "ca.pem");
    fs.writeFileSync(caFile, outputs.caCertPem);
    const certDir = path.join(dir, "skopeo-certs");
    fs.mkdirSync(certDir, { recursive: true });
    fs.writeFileSync(path.join(certDir, "ca.crt"), outputs.caCertPem);
    const authfile = path.join(dir, "auth.json");
    fs.writeFileSync(authfile, outputs.dockerConfigJson, { mode: 0o600 });
    return { caFile, certDir, authfile };
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

/** The system's trust store, which a registry image or a node trusts public registries by. */
const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export interface StandInUpstream {
    /** An anonymous registry on 127.0.0.1 with TLS from its own CA, as docker.io has its own. */
    registry: RegistryHandle;
    /** A skopeo cert dir trusting it. */
    certDir: string;
    /** The system bundle plus the stand-in's CA: pass it as SSL_CERT_FILE where a real node or image would trust docker.io. */
    trustBundle: string;
}

/** Starts a registry standing for a public upstream such as docker.io. */
export async function startStandInUpstream(dir: string): Promise<StandInUpstream> {
    fs.mkdirSync(dir, { recursive: true });
    const f = (n: string) => path.join(dir, n);
    const openssl = async (args: string[]) => {
        const r = await runCommand("openssl", args);
        if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    };
    const key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes".split(" ");
    await openssl(["req", "-x509", ...key, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "2", "-subj", "/CN=stand-in public CA"]);
    await openssl(["req", ...key, "-keyout", f("tls.key"), "-out", f("tls.csr"), "-subj", "/CN=upstream"]);
    fs.writeFileSync(f("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    const sign = ["x509", "-req", "-in", f("tls.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", f("ext.cnf")];
    await openssl([...sign, "-out", f("tls.crt")]);

    const certDir = f("certs");
    fs.mkdirSync(certDir);
    fs.copyFileSync(f("ca.crt"), path.join(certDir, "ca.crt"));
    const trustBundle = f("trust.pem");
    fs.writeFileSync(trustBundle, (fs.existsSync(SYSTEM_BUNDLE) ? fs.readFileSync(SYSTEM_BUNDLE, "utf8") : "") + fs.readFileSync(f("ca.crt"), "utf8"));

    const registry = await startRegistry({
        configYaml: `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${f("data")}\nhttp:\n  tls:\n    certificate: ${f("tls.crt")}\n    key: ${f("tls.key")}\n`,
        env: {},
        workDir: dir,
        addr: `127.0.0.1:${await freePort()}`,
        caFile: f("ca.crt"),
    });
    return { registry, certDir, trustBundle };
}
