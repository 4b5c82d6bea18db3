/**
 * The hosted registry on object storage as the generated Deployments run it: read-only and read-write
 * replicas, each the real registry from its own pod spec, over one bucket of versitygw, behind
 * round-robin stand-ins for kube-proxy (the Service's ClusterIP for pulls, the workstation's
 * port-forward for pushes). Used by the integration tests and `npm run bench`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Balancer, startBalancer } from "./harness/balancer";
import { waitFor } from "./harness/procs";
import { RegistryHandle } from "./harness/registry";
import { S3Store, startVersitygw } from "./harness/versitygw";
import { startPushSupervisor } from "./harness/push-supervisor";
import { HOSTED_IP, LoopbackCluster, startRegistryFromDeployment, tempDir } from "./support";

/** Pod IPs of read-only replicas (in turn, as rollouts replace them) and read-write ones; in the certificate through extraNames. */
export const PULL_IPS = ["127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25", "127.0.0.26"];
export const PUSH_IPS = ["127.0.0.31", "127.0.0.32"];
/** How long a replaced replica keeps serving after its endpoint is out: the preStop sleep, shortened. */
export const PRE_STOP_MS = 500;

const backend = (r: RegistryHandle) => ({ host: new URL(r.url).hostname, port: Number(new URL(r.url).port) });

export class ReplicatedHosted {
    readonly pulls: RegistryHandle[] = [];
    readonly pushes: RegistryHandle[] = [];
    pullService!: Balancer;
    pushForward!: Balancer;
    private nextIp = 0;

    private constructor(
        readonly store: S3Store,
        readonly cluster: LoopbackCluster,
        private readonly s3Work: string,
    ) {}

    /** versitygw, the program deployed onto its bucket, `pullReplicas` read and `pushReplicas` write replicas, and the stand-ins. */
    static async start(opts: {
        prefix: string;
        pullReplicas: number;
        pushReplicas: number;
        /** More stack config, e.g. gcSchedule. */
        config?: Record<string, string>;
    }): Promise<ReplicatedHosted> {
        const s3Work = tempDir(`${opts.prefix}s3-`);
        const store = await startVersitygw({ workDir: s3Work, ip: "127.0.0.9", bucket: "images" });
        let cluster: LoopbackCluster | undefined;
        try {
            cluster = await LoopbackCluster.start({
                prefix: opts.prefix,
                hosted: false,
                nodeMode: "apply",
                config: {
                    "cluster-registry:objectStorageBucket": store.bucket,
                    "cluster-registry:objectStorageRegion": "us-east-1",
                    "cluster-registry:objectStorageEndpoint": store.endpoint,
                    "cluster-registry:objectStorageRootDirectory": "/cluster-a",
                    "cluster-registry:objectStorageAccessKey": store.accessKey,
                    "cluster-registry:objectStorageSecretKey": store.secretKey,
                    "cluster-registry:pullReplicas": String(opts.pullReplicas),
                    "cluster-registry:extraNames": JSON.stringify([...PULL_IPS, ...PUSH_IPS]),
                    ...opts.config,
                },
                secretKeys: ["cluster-registry:objectStorageSecretKey"],
            });
            const r = new ReplicatedHosted(store, cluster, s3Work);
            for (let i = 0; i < opts.pullReplicas; i++) r.pulls.push(await r.startPull());
            for (const ip of PUSH_IPS.slice(0, opts.pushReplicas)) r.pushes.push(await r.startPush(ip));
            r.pullService = await startBalancer({ host: HOSTED_IP, port: cluster.port }, r.pulls.map(backend));
            r.pushForward = await startBalancer({ host: "127.0.0.1", port: cluster.port }, r.pushes.map(backend));
            return r;
        } catch (e) {
            await cluster?.stop();
            await store.stop();
            throw e;
        }
    }

    /** A new pod of the read-only Deployment, on the next pod IP; ready (answering) when this resolves. */
    startPull(): Promise<RegistryHandle> {
        const ip = PULL_IPS[this.nextIp++ % PULL_IPS.length];
        const d = this.cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted");
        return startRegistryFromDeployment(
            this.cluster.cloud,
            d,
            path.join(this.cluster.work, `pull-${ip}`),
            `${ip}:${this.cluster.port}`,
            this.cluster.client.caFile,
            {},
            "registry",
        );
    }

    /** A pod of the read-write Deployment: its container's own command, the supervisor script; `settings` replaces values of its settings file. */
    startPush(ip: string, settings?: Record<string, string>): Promise<RegistryHandle> {
        const d = this.cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted-push");
        return startPushSupervisor({
            cloud: this.cluster.cloud,
            deployment: d,
            root: path.join(this.cluster.work, `push-${ip}`),
            listen: `${ip}:${this.cluster.pushPort}`,
            caFile: this.cluster.client.caFile,
            settings,
        });
    }

    /**
     * Replaces read replica `i` as the Deployment's rollout does: the surge pod started and ready, its
     * endpoint in; the old endpoint out, the preStop pause, SIGTERM, and the old pod draining until it exits.
     */
    async rollPull(i: number): Promise<void> {
        const next = await this.startPull();
        this.pullService.add(backend(next));
        await this.stopPull(i);
        this.pulls[i] = next;
    }

    /** Replaces read replica `i` as `strategy: Recreate` did: the old pod stopped first (endpoint out, SIGTERM), then the new one started. */
    async recreatePull(i: number): Promise<void> {
        await this.stopPull(i);
        this.pulls[i] = await this.startPull();
        this.pullService.add(backend(this.pulls[i]));
    }

    private async stopPull(i: number): Promise<void> {
        const old = this.pulls[i];
        this.pullService.remove(backend(old));
        await new Promise((r) => setTimeout(r, PRE_STOP_MS));
        process.kill(old.proc.pid, "SIGTERM");
        await waitFor(async () => old.proc.hasExited(), 70_000, "the old replica draining and exiting");
    }

    /** Connections each replica got through the Service, by `host:port`. */
    served(r: RegistryHandle): number {
        return this.pullService.counts()[`${backend(r).host}:${backend(r).port}`] ?? 0;
    }

    pushedTo(r: RegistryHandle): number {
        return this.pushForward.counts()[`${backend(r).host}:${backend(r).port}`] ?? 0;
    }

    async stop(): Promise<void> {
        await this.pullService?.close();
        await this.pushForward?.close();
        await this.cluster.stop();
        await this.store.stop();
        fs.rmSync(this.s3Work, { recursive: true, force: true });
    }
}
