/**
 * The one set-up path of the integration tests and the benchmark: a cluster stood for on loopback.
 * The program runs under the faithful fakes; the real registry runs from each Deployment it generated,
 * listening on a loopback address that stands for its Service's ClusterIP; the DaemonSet's own script
 * writes a node's certs.d, which a private containerd reads; a TCP forwarder stands for
 * `kubectl port-forward`; a registry with its own CA stands for docker.io.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { DECLARED_SECRET_KEYS } from "../../components/stack-config";
import { FakeCloud, RecordedResource, runProgram } from "../support/fake-cloud";
import { ENTRY, stackConfig } from "../support/stacks";
import { ContainerdHandle, NodeContainerdConfig, startContainerd } from "./harness/containerd";
import { FakeKubeApi, nodeScript, NodeScript, snapshotTree, waitApplied } from "./harness/node";
import { BuiltOciImage } from "./harness/oci";
import { materialize, podLoopback, rebaseYamlPaths } from "./harness/pod";
import { CommandResult, freePort, ProcHandle, runCommand, stopAll } from "./harness/procs";
import { startCoalescerFromDeployment, type CoalescerHandle } from "./harness/nginx";
import { startPushSupervisor } from "./harness/push-supervisor";
import { RegistryHandle, startRegistry } from "./harness/registry";
import { skopeoCopy } from "./harness/skopeo";

/** The hosted registry's ClusterIP (and every other Service's but docker.io's cache's), on loopback. */
export const HOSTED_IP = "127.0.0.2";
/** docker.io's cache's ClusterIP, on loopback. */
export const CACHE_IP = "127.0.0.4";

/** The ClusterIP of docker.io's cache replica `i` (cacheReplicas): the first is {@link CACHE_IP}. */
export function cacheReplicaIP(i: number): string {
    return i === 0 ? CACHE_IP : `127.0.0.${10 + i}`;
}

/** Which cache replica a Pulumi logical name belongs to (`registry-cache-docker-io-1-service`: 1), or undefined. */
function cacheReplicaOf(name: string): number | undefined {
    const m = /cache-docker-io(?:-(\d+))?-/.exec(name);
    return m ? Number(m[1] ?? 0) : undefined;
}

export { podLoopback } from "./harness/pod";

/** A fresh temp dir, short enough for unix socket paths. */
export function tempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Deployed {
    cloud: FakeCloud;
    outputs: Record<string, any>;
    /** What the pull secret (the pull-only identity) holds for the in-cluster host. */
    pullAuth: { username: string; password: string };
}

/** Runs the program (dev stack plus overrides) as one `pulumi up`, with the Services' ClusterIPs chosen by the caller. */
export async function deploy(
    clusterIP: string,
    config: Record<string, string> = {},
    cloud = new FakeCloud({ clusterIP: () => clusterIP }),
    /** Config keys stored with `--secret`. Default: the secret settings the test gives, as `pulumi config set --secret` would set them. */
    secretKeys: string[] = Object.keys(config).filter((k) => DECLARED_SECRET_KEYS.has(k)),
): Promise<Deployed> {
    const { outputs } = await runProgram(cloud, { config: { ...stackConfig("dev"), ...config }, entry: ENTRY, secretKeys });
    const entry = JSON.parse(outputs.dockerConfigJson as string).auths[outputs.host as string];
    return { cloud, outputs, pullAuth: { username: entry.username, password: entry.password } };
}

export interface LoopbackClusterOptions {
    /** Prefix of the temp dir everything lives in (short: unix socket paths). */
    prefix: string;
    /** Stack config on top of the dev stack's; the port is picked free. Default: none. */
    config?: Record<string, string>;
    /** Keys of `config` stored with `--secret`. Default: none. */
    secretKeys?: string[];
    /**
     * Start the hosted registry's pod on the Service's ClusterIP, and the port-forward to its push port.
     * false: the test runs its replicas itself (object storage). Default: true.
     */
    hosted?: boolean;
    /** Start a stand-in docker.io, make it docker.io's only cache's upstream, and start that cache. Default: false. */
    dockerIoCache?: boolean;
    /** Files another tool keeps in the node's certs.d, by path relative to it. Default: none. */
    nodeFiles?: Record<string, string>;
    /** How the DaemonSet's script runs: as its pod does (`run`, kept running) or one `apply`. Default: `run`. */
    nodeMode?: "run" | "apply";
    /**
     * The node's containerd: which program and which node config, or `false` for none (start them with
     * `startNodeContainerd`). Default: Debian 12's containerd 1.6 with the harness's own config.
     */
    containerd?: NodeContainerdSpec | false;
    /** What the push container's clock says (`HH:MM`, UTC), for its garbage-collection schedule. Default: the real clock. */
    pushClock?: string;
}

/** A node's containerd: a program (e.g. a {@link ContainerdBuild}'s binary) and a real node's config. */
export interface NodeContainerdSpec {
    /** Default: Debian 12's containerd 1.6 (unpacked into .cache/ by scripts/test-all). */
    binary?: string;
    /** Default: the harness's own 1.6 config, reading `nodeCerts`. */
    nodeConfig?: NodeContainerdConfig;
}

/** What a workstation keeps from the stack's outputs to push: the CA (a file, and a skopeo cert dir) and the authfile. */
export interface ClientFiles {
    caFile: string;
    certDir: string;
    /** The `pushDockerConfigJson` output, mode 0600. */
    authfile: string;
    /** The `dockerConfigJson` output (the pull secret's), mode 0600. */
    pullAuthfile: string;
}

/** A stand-in for a public registry: anonymous, TLS from its own CA, as docker.io has its own. */
export interface StandInUpstream {
    registry: RegistryHandle;
    /** A skopeo cert dir trusting it. */
    certDir: string;
    /** The system bundle plus the stand-in's CA: SSL_CERT_FILE where a node or an image trusts docker.io. */
    trustBundle: string;
}

/**
 * A cluster stood for on loopback: `await LoopbackCluster.start({ prefix })`, then pull over CRI from
 * `containerd.socket`, push with `push()`, and `stop()` in afterAll.
 */
export class LoopbackCluster {
    /** The program's latest run. */
    dep!: Deployed;
    /** The CA and authfile a workstation keeps from the first run's outputs. */
    client!: ClientFiles;
    /** The stand-in docker.io, with `dockerIoCache`. */
    upstream?: StandInUpstream;
    /** The hosted registry's read-only container, on the Service's registry port. */
    hosted!: RegistryHandle;
    /** The hosted registry's read-write container, on the Service's push port. */
    hostedPush!: RegistryHandle;
    /** docker.io's cache, with `dockerIoCache`: its registry. */
    cache?: RegistryHandle;
    /** docker.io's cache's nginx in front of its registry (replica 0's), unless coalescing is off. */
    coalescer?: CoalescerHandle;
    /** Every replica of docker.io's cache by index (`cacheReplicas`); the first is `cache`. */
    readonly cacheReplicas: RegistryHandle[] = [];
    /** Each replica's coalescer, by index. */
    private readonly coalescers: (CoalescerHandle | undefined)[] = [];
    /** The directory standing for the node's certs.d, and what it held before the DaemonSet came. */
    readonly nodeCerts: string;
    nodeBefore: Record<string, string> = {};
    node!: NodeScript;
    /** The DaemonSet's pod, in `run` mode. */
    nodeProc?: ProcHandle;
    /** The API server the node agent asks on SIGTERM whether its DaemonSet is gone; set `state` to uninstall. */
    api!: FakeKubeApi;
    containerd!: ContainerdHandle;
    private config: Record<string, string> = {};
    private pushClock?: string;
    private readonly forwards: Array<{ close(): Promise<void> }> = [];

    private constructor(
        readonly work: string,
        /** Every Service's port (their ClusterIPs differ). */
        readonly port: number,
        /** The hosted registry Service's push port. */
        readonly pushPort: number,
        readonly cloud: FakeCloud,
    ) {
        this.nodeCerts = path.join(work, "node", "certs.d");
    }

    /** Deploys, then starts the registries, the port-forward, the node's script and containerd; stops all it started if a step fails. */
    static async start(opts: LoopbackClusterOptions): Promise<LoopbackCluster> {
        const cloud = new FakeCloud({
            clusterIP: (name) => {
                const replica = cacheReplicaOf(name);
                return replica === undefined ? HOSTED_IP : cacheReplicaIP(replica);
            },
        });
        const port = await freePort();
        let pushPort = await freePort();
        while (pushPort === port) pushPort = await freePort();
        const cluster = new LoopbackCluster(tempDir(opts.prefix), port, pushPort, cloud);
        try {
            await cluster.setUp(opts);
            return cluster;
        } catch (e) {
            await cluster.stop();
            throw e;
        }
    }

    private async setUp(opts: LoopbackClusterOptions): Promise<void> {
        this.pushClock = opts.pushClock;
        this.config = { "cluster-registry:port": String(this.port), "cluster-registry:pushPort": String(this.pushPort) };
        if (opts.dockerIoCache) {
            this.upstream = await startStandInUpstream(path.join(this.work, "upstream"));
            this.config["cluster-registry:caches"] = JSON.stringify([`docker.io=${new URL(this.upstream.registry.url).origin}`]);
        }
        this.config = { ...this.config, ...opts.config };
        this.dep = await deploy(HOSTED_IP, this.config, this.cloud, opts.secretKeys);
        this.client = writeClientFiles(this.dep.outputs, this.work);
        if (opts.hosted ?? true) {
            await this.startHosted();
            // `kubectl port-forward svc/registry PORT:PUSHPORT`, which is how the README says to push.
            await this.forward("127.0.0.1", this.pushPort);
        }
        if (opts.dockerIoCache) {
            const replicas = this.cloud.byType("kubernetes:apps/v1:Deployment").filter((d) => /cache-docker-io(-\d+)?$/.test(d.name)).length;
            for (let i = 0; i < replicas; i++) await this.startCache(false, i);
        }

        for (const [rel, content] of Object.entries(opts.nodeFiles ?? {})) {
            fs.mkdirSync(path.dirname(path.join(this.nodeCerts, rel)), { recursive: true });
            fs.writeFileSync(path.join(this.nodeCerts, rel), content);
        }
        fs.mkdirSync(this.nodeCerts, { recursive: true });
        this.nodeBefore = snapshotTree(this.nodeCerts);
        this.api = await FakeKubeApi.start(this.work);
        this.node = nodeScript(this.cloud, this.work, this.nodeCerts, this.api);
        if ((opts.nodeMode ?? "run") === "run") {
            this.nodeProc = this.node.start(path.join(this.work, "node-config.log"));
            await waitApplied(this.nodeProc);
        } else await this.applyNode();
        if (opts.containerd !== false) this.containerd = await this.startNodeContainerd("ctd", opts.containerd);
    }

    /**
     * Starts (another) node containerd reading `nodeCerts`, in work dir `<work>/<name>` (keep it short:
     * unix socket paths). Several can run at once against the same registries, one per node config.
     */
    async startNodeContainerd(name: string, spec: NodeContainerdSpec = {}): Promise<ContainerdHandle> {
        // A node trusts docker.io's public CA; here the stand-in's.
        const env: Record<string, string> = this.upstream ? { SSL_CERT_FILE: this.upstream.trustBundle } : {};
        return startContainerd({ workDir: path.join(this.work, name), certsDir: this.nodeCerts, env, ...spec });
    }

    /** `pulumi up` again on the same stack with more config, then the new DaemonSet's script applied once; the registries run on as they were. */
    async redeploy(config: Record<string, string>): Promise<void> {
        this.config = { ...this.config, ...config };
        this.dep = await deploy(HOSTED_IP, this.config, this.cloud);
        this.node = nodeScript(this.cloud, this.work, this.nodeCerts, this.api);
        await this.applyNode();
    }

    /**
     * (Re)starts the hosted registry's pod on the same pod directory, so its storage survives as a
     * PVC's does: both containers, each from its own container spec, over the one storage directory;
     * the push container through its supervisor script.
     */
    async startHosted(): Promise<RegistryHandle> {
        await this.hosted?.stop();
        await this.hostedPush?.stop();
        const deployment = this.cloud.one("kubernetes:apps/v1:Deployment", "hosted");
        const pod = path.join(this.work, "pod");
        this.hosted = await startRegistryFromDeployment(this.cloud, deployment, pod, `${HOSTED_IP}:${this.port}`, this.client.caFile, {}, "registry");
        const listen = `${HOSTED_IP}:${this.pushPort}`;
        this.hostedPush = await startPushSupervisor({ cloud: this.cloud, deployment, root: pod, listen, caFile: this.client.caFile, clock: this.pushClock });
        return this.hosted;
    }

    /**
     * (Re)starts docker.io's cache pod, replica `replica` (each on its own pod directory): its registry,
     * and its coalescer in front on the Service's address (the registry then on a free port of that
     * address); `empty` deletes what it stored first; `launcher` as startRegistry's.
     */
    async startCache(empty = false, replica = 0, launcher?: readonly string[]): Promise<RegistryHandle> {
        const old = this.cacheReplicas[replica];
        await this.stopCache(replica);
        if (empty && old) fs.rmSync(registryStorage(old), { recursive: true, force: true });
        const deployment = this.cloud.one("kubernetes:apps/v1:Deployment", replica === 0 ? "cache-docker-io" : `cache-docker-io-${replica}`);
        const coalesced = (deployment.inputs.spec.template.spec.containers as Array<{ name: string }>).some((c) => c.name === "coalescer");
        const service = `${cacheReplicaIP(replica)}:${this.port}`;
        const registryAt = coalesced ? `${cacheReplicaIP(replica)}:${await freePort()}` : service;
        // The registry image trusts docker.io's public CA; here the stand-in's, through SSL_CERT_FILE.
        const env: Record<string, string> = this.upstream ? { SSL_CERT_FILE: this.upstream.trustBundle } : {};
        const root = path.join(this.work, replica === 0 ? "cache-pod" : `cache-pod-${replica}`);
        const started = await startRegistryFromDeployment(this.cloud, deployment, root, registryAt, this.client.caFile, env, undefined, launcher);
        this.cacheReplicas[replica] = started;
        this.coalescers[replica] = coalesced
            ? await startCoalescerFromDeployment(this.cloud, deployment, root, service, registryAt, this.client.caFile)
            : undefined;
        if (replica === 0) [this.cache, this.coalescer] = [started, this.coalescers[0]];
        return started;
    }

    /** Stops docker.io's cache pod (replica `replica`), every container of it. */
    async stopCache(replica = 0): Promise<void> {
        await this.coalescers[replica]?.stop();
        this.coalescers[replica] = undefined;
        if (replica === 0) this.coalescer = undefined;
        await this.cacheReplicas[replica]?.stop();
    }

    /** What docker.io's cache pod logged of the requests it was sent: its front door's (nginx's, or the registry's) log. */
    cacheLog(): string {
        return (this.coalescer ?? this.cache?.proc)?.log() ?? "";
    }

    /** Forwards `host`:port to the hosted registry's port `to` (default: the read-only one), as port-forward or kube-proxy would. */
    async forward(host: string, to = this.port): Promise<void> {
        this.forwards.push(await portForward({ host, port: this.port }, { host: HOSTED_IP, port: to }));
    }

    /** Pushes with skopeo through the port-forward to the push port, with the generated push authfile (or another) and CA. */
    push(image: BuiltOciImage, repoTag: string, authfile = this.client.authfile): Promise<CommandResult> {
        return skopeoCopy({ src: image.ref, dest: `docker://localhost:${this.port}/${repoTag}`, authfile, certDir: this.client.certDir });
    }

    /** Pushes to the stand-in docker.io, anonymously. */
    pushUpstream(image: BuiltOciImage, repoTag: string): Promise<CommandResult> {
        const upstream = this.upstream ?? fail("no stand-in upstream: start with dockerIoCache");
        return skopeoCopy({ src: image.ref, dest: `docker://${new URL(upstream.registry.url).host}/${repoTag}`, certDir: upstream.certDir });
    }

    /** An image reference as a pod names it: the in-cluster host. */
    ref(repoTag: string): string {
        return `${this.dep.outputs.host as string}/${repoTag}`;
    }

    /** Stops every process and forwarder and removes the work dir. */
    async stop(): Promise<void> {
        for (const f of this.forwards.splice(0)) await f.close();
        await stopAll();
        await this.api?.stop();
        fs.rmSync(this.work, { recursive: true, force: true });
    }

    private async applyNode(): Promise<void> {
        const applied = await this.node.exec("apply");
        if (applied.code !== 0) throw new Error(`node script apply failed (${String(applied.code)}): ${applied.stderr}`);
    }
}

function fail(message: string): never {
    throw new Error(message);
}

function writeClientFiles(outputs: Record<string, any>, dir: string): ClientFiles {
    const caFile = path.join(dir, "ca.pem");
    fs.writeFileSync(caFile, outputs.caCertPem);
    const certDir = path.join(dir, "skopeo-certs");
    fs.mkdirSync(certDir, { recursive: true });
    fs.writeFileSync(path.join(certDir, "ca.crt"), outputs.caCertPem);
    const authfile = path.join(dir, "auth.json");
    fs.writeFileSync(authfile, outputs.pushDockerConfigJson, { mode: 0o600 });
    const pullAuthfile = path.join(dir, "pull-auth.json");
    fs.writeFileSync(pullAuthfile, outputs.dockerConfigJson, { mode: 0o600 });
    return { caFile, certDir, authfile, pullAuthfile };
}

/**
 * Starts the real distribution registry from a registry Deployment: its command, env and config file,
 * with every mounted Secret and ConfigMap written at its mount path under `root`. Only the listen
 * address differs: the Service's DNAT to the pod becomes the registry listening on ClusterIP:port itself.
 * `extraEnv` stands for what the image brings (its trust store). `containerName` picks a container of
 * a pod with several (the hosted registry's `push`); default: the first.
 */
export async function startRegistryFromDeployment(
    cloud: FakeCloud,
    deployment: RecordedResource,
    root: string,
    listen: string,
    caFile: string,
    extraEnv: Record<string, string> = {},
    containerName?: string,
    launcher?: readonly string[],
): Promise<RegistryHandle> {
    const local = materialize(cloud, deployment, root, {}, containerName);
    const [program, verb, configPath] = local.container.command as string[];
    if (program !== "registry" || verb !== "serve") throw new Error(`unexpected registry command ${local.container.command}`);
    const configYaml = rebaseYamlPaths(fs.readFileSync(local.rebase(configPath), "utf8"), local.rebase);
    const debugAddr = (YAML.parse(configYaml) as { http?: { debug?: { addr?: string } } }).http?.debug?.addr;
    const debugEnv: Record<string, string> = debugAddr ? { REGISTRY_HTTP_DEBUG_ADDR: podDebugAddr(debugAddr, listen.split(":")[0]) } : {};
    return startRegistry({ configYaml, env: { ...local.env, ...extraEnv, ...debugEnv }, workDir: root, addr: listen, caFile, launcher });
}

/**
 * A debug listener on the pod's loopback (`127.0.0.1:PORT`) moves to {@link podLoopback}; one on every
 * address of the pod (`:PORT`) to the pod's address (the Service's loopback IP here), so the hosted
 * registry and a cache, each on its own IP, can both have it.
 */
function podDebugAddr(addr: string, podIp: string): string {
    const port = addr.split(":").pop() as string;
    if (addr === `:${port}`) return `${podIp}:${port}`;
    if (addr === `127.0.0.1:${port}`) return `${podLoopback(podIp)}:${port}`;
    throw new Error(`a debug listener on ${addr}: the harness knows a pod's loopback and every address of the pod`);
}

/** Where a registry stores what it holds: its config's storage.filesystem.rootdirectory. */
function registryStorage(registry: RegistryHandle): string {
    const config = YAML.parse(fs.readFileSync(registry.configFile, "utf8")) as { storage?: { filesystem?: { rootdirectory?: string } } };
    return config.storage?.filesystem?.rootdirectory ?? fail(`no storage.filesystem.rootdirectory in ${registry.configFile}`);
}

/** A TCP forwarder, as `kubectl port-forward` is: listens on `from`, connects to `to`. */
async function portForward(from: { host: string; port: number }, to: { host: string; port: number }): Promise<{ close(): Promise<void> }> {
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

/** A stand-in public registry on 127.0.0.1; `dnsName` is a name its certificate also carries. */
export async function startStandInUpstream(dir: string, dnsName = "localhost"): Promise<StandInUpstream> {
    fs.mkdirSync(dir, { recursive: true });
    const f = (n: string) => path.join(dir, n);
    const openssl = async (args: string[]) => {
        const r = await runCommand("openssl", args);
        if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    };
    const key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes".split(" ");
    await openssl(["req", "-x509", ...key, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "2", "-subj", "/CN=stand-in public CA"]);
    await openssl(["req", ...key, "-keyout", f("tls.key"), "-out", f("tls.csr"), "-subj", "/CN=upstream"]);
    fs.writeFileSync(f("ext.cnf"), `subjectAltName=IP:127.0.0.1,DNS:${dnsName}\n`);
    await openssl([
        "x509",
        "-req",
        "-in",
        f("tls.csr"),
        "-CA",
        f("ca.crt"),
        "-CAkey",
        f("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        f("ext.cnf"),
        "-out",
        f("tls.crt"),
    ]);

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
