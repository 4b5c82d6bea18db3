/**
 * FakeCloud: a `pulumi.runtime.Mocks` implementation that behaves like the Pulumi engine plus the real
 * providers for the resource types this project uses, producing REAL artifacts from the program's actual
 * inputs:
 *
 *  - @pulumi/tls: real keys (node:crypto), real X.509 certificates / PKCS#10 requests, DER-encoded the way
 *    the terraform-provider-tls (Go crypto/x509) does it (extension order/criticality, SKI/AKI rules,
 *    BasicConstraints always present, SANs of a LocallySignedCert taken from the CSR, issuer = CA subject).
 *  - @pulumi/random: crypto-random passwords/strings/bytes with the provider's character-class rules and a
 *    real bcrypt hash.
 *  - @pulumi/kubernetes: inputs echoed, auto-naming (`<name>-<8 hex>`), Service clusterIP allocation.
 *
 * Engine emulation: state is kept per URN across runs (`newRun()` = another `pulumi up` on the same stack):
 * identical inputs give identical outputs; changed inputs replace. `additionalSecretOutputs` and secret
 * inputs make the corresponding outputs secret, as the engine does. Preview mode returns computed outputs
 * as unknown (unless the resource exists in state with identical inputs, as a real preview would show).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import bcrypt from "bcryptjs";
import YAML from "yaml";

// ---------------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------------

export interface RecordedResource {
    type: string;
    name: string;
    urn: string;
    /** Inputs as the program passed them, secrets unwrapped (unknowns, in preview, become undefined). */
    inputs: Record<string, any>;
    /** Outputs as the program sees them, secrets unwrapped; computed outputs are absent when unknown. */
    outputs: Record<string, any>;
    /** Top-level input keys whose value was (or contained) a secret. */
    secretInputs?: string[];
    /** Top-level output keys that the engine marks secret (additionalSecretOutputs + secret inputs). */
    secretOutputs?: string[];
    /** Physical id ("" when unknown, i.e. in preview). */
    id?: string;
    /** Parent URN ("" for none). Only known when the cloud was installed via `install()`/`runProgram()`. */
    parent?: string;
    custom?: boolean;
}

export interface FakeCloudOptions {
    /** ClusterIP the fake API server gives a Service, by Service resource name (the Pulumi logical name) or a function; default: 10.96.0.<n> allocated in order */
    clusterIP?: (serviceLogicalName: string, inputs: Record<string, any>) => string;
    /** Simulate `pulumi preview`: computed outputs (certPem, privateKeyPem, result, base64, clusterIP, ...) come back unknown */
    preview?: boolean;
}

/** Sentinel understood by the Pulumi runtime as "unknown" (runtime/rpc.js `unknownValue`). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

interface StoredState {
    inputsJSON: string;
    id: string;
    outputs: Record<string, any>; // plain values
    extraSecret: string[]; // computed outputs the provider/engine marks secret
}

interface PendingRequest {
    parent: string;
    additionalSecretOutputs: string[];
}

/** additionalSecretOutputs the SDKs declare; used when the monitor is not hooked (plain `setMocks`). */
const KNOWN_SECRET_OUTPUTS: Record<string, string[]> = {
    "tls:index/privateKey:PrivateKey": ["privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"],
    "tls:index/selfSignedCert:SelfSignedCert": ["privateKeyPem", "privateKeyPemWo"],
    "tls:index/certRequest:CertRequest": ["privateKeyPem", "privateKeyPemWo"],
    "tls:index/locallySignedCert:LocallySignedCert": ["caPrivateKeyPem", "caPrivateKeyPemWo"],
    "random:index/randomPassword:RandomPassword": ["bcryptHash", "result"],
    "random:index/randomBytes:RandomBytes": ["base64", "hex"],
    "kubernetes:core/v1:Secret": ["data", "stringData"],
};

export class FakeCloud implements pulumi.runtime.Mocks {
    readonly resources: RecordedResource[] = [];
    /** Errors thrown by newResource in the current run (a real `pulumi up` would fail). */
    readonly errors: Error[] = [];
    /**
     * Preview mode (from the options). Mutable so a test can `pulumi up` and then preview against the same
     * state: resources whose inputs are unchanged then show their stored (known) outputs, like a real preview.
     * Takes effect at the next `install()`/`runProgram()`.
     */
    preview: boolean;

    private readonly state = new Map<string, StoredState>();
    private readonly clusterIPs = new Map<string, string>();
    private nextIP = 0;
    private pending: PendingRequest[] = [];
    private readonly opts: FakeCloudOptions;

    constructor(opts: FakeCloudOptions = {}) {
        this.opts = opts;
        this.preview = !!opts.preview;
    }

    /** Forget this run's records but keep state (like a second `pulumi up` against the same stack). */
    newRun(): void {
        this.resources.length = 0;
        this.errors.length = 0;
    }

    /**
     * `pulumi.runtime.setMocks(this, project, stack, preview)` plus a hook on the MockMonitor so resources
     * get their real URN (with parent type chain) and the SDK's additionalSecretOutputs.
     */
    async install(project?: string, stack?: string): Promise<void> {
        await pulumi.runtime.setMocks(this, project, stack, this.preview);
        const monitor = (pulumi.runtime as any).getMonitor?.();
        if (!monitor || monitor.__fakeCloudHooked) return;
        for (const method of ["registerResource", "readResource"]) {
            const orig = monitor[method];
            if (typeof orig !== "function") continue;
            monitor[method] = (req: any, callback: any) => {
                // MockMonitor calls mocks.newResource synchronously before its first await, so a stack works.
                this.pending.push({
                    parent: req.getParent?.() ?? "",
                    additionalSecretOutputs: req.getAdditionalsecretoutputsList?.() ?? [],
                });
                try {
                    return orig.call(monitor, req, callback);
                } finally {
                    this.pending.pop();
                }
            };
        }
        monitor.__fakeCloudHooked = true;
    }

    /**
     * Runs `fn` (an inline program you expect to fail registration) while swallowing the unhandled
     * rejections the Pulumi runtime raises for resources this cloud refused (a real `pulumi up` would log
     * them and fail). Other unhandled rejections still reach vitest. Inspect `cloud.errors` afterwards.
     */
    async expectFailures<T>(fn: () => Promise<T>): Promise<T> {
        return withFakeCloudRejectionsSuppressed(this, fn);
    }

    byType(type: string): RecordedResource[] {
        return this.resources.filter((r) => r.type === type);
    }

    one(type: string, nameSuffix?: string): RecordedResource {
        const ofType = this.byType(type);
        const matches = nameSuffix === undefined ? ofType : ofType.filter((r) => r.name.endsWith(nameSuffix));
        if (matches.length === 1) return matches[0];
        const what = `${type}${nameSuffix === undefined ? "" : ` with name ending in "${nameSuffix}"`}`;
        const listed = (ofType.length > 0 ? ofType : this.resources).map((r) => `  - ${r.type}  ${r.name}  (${r.urn})`);
        throw new Error(
            `FakeCloud.one: expected exactly one ${what}, found ${matches.length}.\n` +
                (ofType.length > 0
                    ? `Resources of type ${type}:\n`
                    : `No resource of that type; all ${this.resources.length} resources registered in this run:\n`) +
                listed.join("\n"),
        );
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
        const tok = args.token;
        if (tok === "tls:index/getPublicKey:getPublicKey") {
            const pem = unwrapSecrets(args.inputs?.privateKeyPem);
            if (typeof pem !== "string") throw new Error(`FakeCloud: ${tok} needs privateKeyPem`);
            return { ...args.inputs, ...publicKeyOutputs(crypto.createPrivateKey(pem)), id: "none" };
        }
        if (tok.startsWith("kubernetes:") || tok.startsWith("tls:") || tok.startsWith("random:")) {
            throw new Error(
                `FakeCloud: invoke "${tok}" is not emulated (it would need a real cluster/network/chart). ` +
                    `Inputs: ${JSON.stringify(unwrapSecrets(args.inputs))}`,
            );
        }
        return args.inputs;
    }

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
        const pend = this.pending[this.pending.length - 1];
        const parent = pend?.parent ?? "";
        const urn = makeUrn(parent, args.type, args.name);
        const rawInputs: Record<string, any> = args.inputs ?? {};
        const secretInputs = Object.keys(rawInputs).filter((k) => containsSecret(rawInputs[k]));
        const inputs = unwrapSecrets(rawInputs, /*unknownAs*/ undefined) as Record<string, any>;
        // What the provider sees: secrets unwrapped, unknowns (preview only) kept as the sentinel.
        const live = unwrapSecrets(rawInputs, UNKNOWN) as Record<string, any>;
        const aso = new Set<string>([...(pend ? pend.additionalSecretOutputs : (KNOWN_SECRET_OUTPUTS[args.type] ?? []))]);

        try {
            const inputsJSON = canonicalJSON(live);
            const prev = this.state.get(urn);
            const reuse = prev !== undefined && prev.inputsJSON === inputsJSON && !this.readyForRenewal(args.type, prev);
            let id: string;
            let outputs: Record<string, any>;
            let extraSecret: string[];
            if (reuse) {
                id = prev!.id;
                outputs = structuredClone(prev!.outputs);
                extraSecret = prev!.extraSecret;
            } else if (this.preview) {
                const planned = this.plan(args.type, args.name, urn, live, !!args.custom);
                id = "";
                outputs = planned.outputs;
                extraSecret = [];
            } else {
                const created = this.create(args.type, args.name, urn, live, !!args.custom);
                id = created.id;
                outputs = created.outputs;
                extraSecret = created.extraSecret ?? [];
                this.state.set(urn, { inputsJSON, id, outputs: structuredClone(outputs), extraSecret });
            }

            // Engine semantics: an output is secret if listed in additionalSecretOutputs or if the same-named
            // input was secret.
            const secretOut = new Set<string>([...aso, ...secretInputs, ...extraSecret]);
            const state: Record<string, any> = {};
            for (const [k, v] of Object.entries(outputs)) {
                state[k] = secretOut.has(k) && v !== UNKNOWN && !containsUnknownSentinel(v) ? wrapSecret(v) : v;
            }
            this.resources.push({
                type: args.type,
                name: args.name,
                urn,
                inputs,
                outputs: stripUnknownSentinels(outputs),
                secretInputs,
                secretOutputs: Object.keys(outputs).filter((k) => secretOut.has(k)),
                id,
                parent,
                custom: args.custom,
            });
            return { id, state };
        } catch (e) {
            const err = e instanceof Error ? e : new Error(String(e));
            err.message = `FakeCloud: ${args.type} "${args.name}": ${err.message}`;
            this.errors.push(err);
            throw err;
        }
    }

    // -------------------------------------------------------------------------------------------------------

    private readyForRenewal(type: string, prev: StoredState): boolean {
        if (type !== "tls:index/selfSignedCert:SelfSignedCert" && type !== "tls:index/locallySignedCert:LocallySignedCert") {
            return false;
        }
        const end = Date.parse(prev.outputs.validityEndTime);
        const early = Number(prev.outputs.earlyRenewalHours ?? 0) * 3600_000;
        return Number.isFinite(end) && Date.now() >= end - early;
    }

    /** `pulumi up`: produce real outputs. */
    private create(
        type: string,
        name: string,
        urn: string,
        inputs: Record<string, any>,
        custom: boolean,
    ): { id: string; outputs: Record<string, any>; extraSecret?: string[] } {
        switch (type) {
            case "tls:index/privateKey:PrivateKey":
                return createPrivateKey(inputs);
            case "tls:index/selfSignedCert:SelfSignedCert":
                return createSelfSignedCert(inputs);
            case "tls:index/certRequest:CertRequest":
                return createCertRequest(inputs);
            case "tls:index/locallySignedCert:LocallySignedCert":
                return createLocallySignedCert(inputs);
            case "random:index/randomPassword:RandomPassword": {
                const result = randomString(inputs);
                return {
                    id: "none",
                    outputs: { ...randomDefaults(inputs), result, bcryptHash: bcryptHash(result) },
                };
            }
            case "random:index/randomString:RandomString": {
                const result = randomString(inputs);
                return { id: result, outputs: { ...randomDefaults(inputs), result } };
            }
            case "random:index/randomBytes:RandomBytes": {
                const len = requireInt(inputs.length, "length", 1);
                const bytes = crypto.randomBytes(len);
                return { id: "none", outputs: { ...inputs, base64: bytes.toString("base64"), hex: bytes.toString("hex") } };
            }
        }
        if (type.startsWith("kubernetes:") && custom) {
            const outputs = this.kubernetesObject(type, name, urn, inputs, false);
            return { id: kubernetesId(outputs), outputs };
        }
        return { id: custom ? `${name}-id` : "", outputs: { ...inputs } };
    }

    /** `pulumi preview` of a create/replace: computed outputs unknown (absent => unknown in preview). */
    private plan(type: string, name: string, urn: string, inputs: Record<string, any>, custom: boolean) {
        switch (type) {
            case "tls:index/privateKey:PrivateKey":
                return { outputs: { ...inputs, ...privateKeyDefaults(inputs) } };
            case "tls:index/selfSignedCert:SelfSignedCert":
            case "tls:index/locallySignedCert:LocallySignedCert":
                return { outputs: { ...inputs, ...certDefaults(inputs) } };
            case "random:index/randomPassword:RandomPassword":
            case "random:index/randomString:RandomString":
                return { outputs: randomDefaults(inputs) };
        }
        if (type.startsWith("kubernetes:") && custom) {
            return { outputs: this.kubernetesObject(type, name, urn, inputs, true) };
        }
        return { outputs: { ...inputs } };
    }

    private kubernetesObject(type: string, name: string, urn: string, inputs: Record<string, any>, preview: boolean): Record<string, any> {
        const out: Record<string, any> = structuredClone(inputs);
        const kind = type.split(":").pop() ?? "";
        const isList = kind.endsWith("List");
        const isPatch = kind.endsWith("Patch");
        if (!isList && !isPatch && type !== "kubernetes:index:Provider") {
            const md: Record<string, any> = out.metadata && typeof out.metadata === "object" ? out.metadata : {};
            if ((md.name === undefined || md.name === null || md.name === "") && !md.generateName) {
                // Real provider: `<urn name>-<8 random hex>`; derived from the URN here so reruns agree.
                md.name = `${name}-${crypto.createHash("sha256").update(urn).digest("hex").slice(0, 8)}`;
                md.annotations = { ...(md.annotations ?? {}), "pulumi.com/autonamed": "true" };
            }
            out.metadata = md;
        }
        if (type === "kubernetes:core/v1:Service") {
            const spec: Record<string, any> = out.spec && typeof out.spec === "object" ? out.spec : {};
            if (spec.type !== "ExternalName") {
                if (spec.clusterIP === undefined || spec.clusterIP === null || spec.clusterIP === "") {
                    if (preview && !this.clusterIPs.has(urn)) {
                        spec.clusterIP = UNKNOWN;
                        spec.clusterIPs = UNKNOWN;
                    } else {
                        const ip = this.clusterIPs.get(urn) ?? this.allocateClusterIP(name, inputs);
                        this.clusterIPs.set(urn, ip);
                        spec.clusterIP = ip;
                        spec.clusterIPs = [ip];
                    }
                } else if (spec.clusterIPs === undefined) {
                    spec.clusterIPs = [spec.clusterIP];
                }
            }
            out.spec = spec;
            out.status = { loadBalancer: {} };
        }
        return out;
    }

    private allocateClusterIP(name: string, inputs: Record<string, any>): string {
        if (this.opts.clusterIP) return this.opts.clusterIP(name, inputs);
        const n = 100 + this.nextIP++;
        return `10.96.${Math.floor(n / 254)}.${(n % 254) + 1}`;
    }
}

// ---------------------------------------------------------------------------------------------------------
// runProgram
// ---------------------------------------------------------------------------------------------------------

/** Loads the program's entry afresh, so every run registers its resources again. */
export type ProgramLoader = (entry: string) => Promise<Record<string, unknown>>;

/** Under vitest: forget the program's modules (not @pulumi/*, which load from node_modules), then import. */
let loadProgram: ProgramLoader = async (entry) => {
    const { vi } = await import("vitest");
    vi.resetModules();
    return import(entry);
};

/** Outside vitest (the benchmark), how to load the program afresh. */
export function setProgramLoader(loader: ProgramLoader): void {
    loadProgram = loader;
}

export async function runProgram(
    cloud: FakeCloud,
    opts: {
        config: Record<string, string>;
        secretKeys?: string[];
        project?: string;
        stack?: string;
        entry: string /* absolute path to index.ts */;
    },
): Promise<{ outputs: Record<string, unknown>; secretOutputs: Set<string> }> {
    const project = opts.project ?? projectNameNear(opts.entry) ?? "project";
    const stack = opts.stack ?? "test";
    cloud.newRun();
    await cloud.install(project, stack);
    const config = { ...projectConfigDefaults(opts.entry, project), ...opts.config };
    pulumi.runtime.setAllConfig(config, (opts.secretKeys ?? []).map(cleanConfigKey));

    // Registration failures are reported by rejecting (below), so the runtime's unhandled rejections for
    // them are swallowed here instead of failing the whole vitest run.
    return withFakeCloudRejectionsSuppressed(cloud, async () => {
        let mod: Record<string, unknown>;
        try {
            mod = await loadProgram(opts.entry);
        } catch (e) {
            // Let any registrations the program started before throwing land, so tests can assert on them.
            await settle(cloud);
            throw e;
        }

        const outputs: Record<string, unknown> = {};
        const secretOutputs = new Set<string>();
        await settle(cloud);
        const failed = new Promise<never>((_, reject) => {
            // Outputs of a resource whose dependency failed never resolve (the real runtime exits instead).
            const check = () => (cloud.errors.length > 0 ? reject(registrationError(cloud)) : setTimeout(check, 20).unref());
            check();
        });
        failed.catch(() => undefined);
        await Promise.race([
            failed,
            Promise.all(
                Object.keys(mod).map(async (key) => {
                    const out = pulumi.output(mod[key] as any) as any;
                    const [value, isSecret] = await Promise.all([out.promise(/*withUnknowns*/ true), out.isSecret]);
                    outputs[key] = stripUnknowns(value);
                    if (isSecret) secretOutputs.add(key);
                }),
            ),
        ]);
        await settle(cloud);
        if (cloud.errors.length > 0) throw registrationError(cloud);
        return { outputs, secretOutputs };
    });
}

function registrationError(cloud: FakeCloud): Error {
    const msg = cloud.errors.map((e) => e.message).join("\n");
    return cloud.errors.length === 1 ? cloud.errors[0] : new AggregateError(cloud.errors, msg);
}

async function withFakeCloudRejectionsSuppressed<T>(cloud: FakeCloud, fn: () => Promise<T>): Promise<T> {
    const saved = process.listeners("unhandledRejection");
    const ours = (reason: unknown, promise: Promise<unknown>) => {
        const msg = reason instanceof Error ? reason.message : String(reason);
        if (cloud.errors.some((e) => msg.includes(e.message))) return;
        for (const l of saved) l(reason, promise);
    };
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", ours);
    try {
        const res = await fn();
        await settle(cloud);
        return res;
    } finally {
        // Unhandled-rejection detection runs after the microtask queue drains; give it a turn.
        await new Promise((r) => setTimeout(r, 0));
        process.removeListener("unhandledRejection", ours);
        for (const l of saved) process.on("unhandledRejection", l);
    }
}

/** Waits until the Pulumi runtime has no outstanding RPCs and the set of registered resources is stable. */
export async function settle(cloud: FakeCloud, timeoutMs = 30_000): Promise<void> {
    const waitForRPCs: (() => Promise<void>) | undefined = (pulumi.runtime as any).waitForRPCs;
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let stable = 0;
    while (stable < 3 && Date.now() < deadline) {
        if (waitForRPCs) await waitForRPCs();
        await new Promise((r) => setImmediate(r));
        const n = cloud.resources.length + cloud.errors.length;
        if (n === last) stable++;
        else {
            stable = 0;
            last = n;
        }
    }
}

function cleanConfigKey(key: string): string {
    const idx = key.indexOf(":");
    if (idx > 0 && key.startsWith("config:", idx + 1)) {
        return key.substring(0, idx) + ":" + key.substring(idx + 1 + "config:".length);
    }
    return key;
}

function readPulumiYaml(entry: string): any {
    for (const f of ["Pulumi.yaml", "Pulumi.yml"]) {
        const p = path.join(path.dirname(entry), f);
        if (fs.existsSync(p)) return YAML.parse(fs.readFileSync(p, "utf8"));
    }
    return undefined;
}

function projectNameNear(entry: string): string | undefined {
    const y = readPulumiYaml(entry);
    if (y && typeof y.name === "string") return y.name;
    const pkg = path.join(path.dirname(entry), "package.json");
    if (fs.existsSync(pkg)) {
        const name = JSON.parse(fs.readFileSync(pkg, "utf8")).name;
        if (typeof name === "string") return name;
    }
    return undefined;
}

/** Pulumi.yaml `config: {key: {default: v}}` defaults, as the CLI would apply them. */
function projectConfigDefaults(entry: string, project: string): Record<string, string> {
    const y = readPulumiYaml(entry);
    const res: Record<string, string> = {};
    if (!y || typeof y.config !== "object" || y.config === null) return res;
    for (const [k, spec] of Object.entries<any>(y.config)) {
        const v = spec && typeof spec === "object" && !Array.isArray(spec) ? (spec.default ?? spec.value) : spec;
        if (v === undefined || v === null) continue;
        const key = k.includes(":") ? k : `${project}:${k}`;
        res[key] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return res;
}

// ---------------------------------------------------------------------------------------------------------
// Value helpers (secrets / unknowns / canonical JSON)
// ---------------------------------------------------------------------------------------------------------

function isSecretWrapper(v: any): boolean {
    return v !== null && typeof v === "object" && v[SIG_KEY] === SECRET_SIG;
}

function containsSecret(v: any): boolean {
    if (isSecretWrapper(v)) return true;
    if (Array.isArray(v)) return v.some(containsSecret);
    if (v !== null && typeof v === "object" && !pulumi.Output.isInstance(v)) return Object.values(v).some(containsSecret);
    return false;
}

function wrapSecret(v: any): any {
    return isSecretWrapper(v) ? v : { [SIG_KEY]: SECRET_SIG, value: v };
}

/** Deep-unwrap secret wrappers; unknowns (preview) become `unknownAs`. */
function unwrapSecrets(v: any, unknownAs: any = undefined): any {
    if (pulumi.isUnknown(v) || v === UNKNOWN) return unknownAs;
    if (isSecretWrapper(v)) return unwrapSecrets(v.value, unknownAs);
    if (Array.isArray(v)) return v.map((x) => unwrapSecrets(x, unknownAs));
    if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
        const o: Record<string, any> = {};
        for (const [k, x] of Object.entries(v)) o[k] = unwrapSecrets(x, unknownAs);
        return o;
    }
    return v;
}

function containsUnknownSentinel(v: any): boolean {
    if (v === UNKNOWN || pulumi.isUnknown(v)) return true;
    if (Array.isArray(v)) return v.some(containsUnknownSentinel);
    if (v !== null && typeof v === "object") return Object.values(v).some(containsUnknownSentinel);
    return false;
}

function stripUnknownSentinels(o: Record<string, any>): Record<string, any> {
    const res: Record<string, any> = {};
    for (const [k, v] of Object.entries(o)) {
        const s = unwrapSecrets(v, undefined);
        if (s !== undefined) res[k] = s;
    }
    return res;
}

function stripUnknowns(v: any): any {
    if (pulumi.isUnknown(v)) return undefined;
    if (Array.isArray(v)) return v.map(stripUnknowns);
    if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
        const o: Record<string, any> = {};
        for (const [k, x] of Object.entries(v)) o[k] = stripUnknowns(x);
        return o;
    }
    return v;
}

function canonicalJSON(v: any): string {
    const norm = (x: any): any => {
        if (Array.isArray(x)) return x.map(norm);
        if (x !== null && typeof x === "object") {
            const o: Record<string, any> = {};
            for (const k of Object.keys(x).sort()) if (x[k] !== undefined) o[k] = norm(x[k]);
            return o;
        }
        return x;
    };
    return JSON.stringify(norm(v));
}

function makeUrn(parent: string, type: string, name: string): string {
    let qualified = type;
    if (parent) {
        const parentType = parent.split("::")[2].split("$").pop();
        qualified = `${parentType}$${type}`;
    }
    return `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${qualified}::${name}`;
}

function kubernetesId(o: Record<string, any>): string {
    const md = o.metadata ?? {};
    if (!md.name) return `${o.kind ?? "object"}-id`;
    return md.namespace ? `${md.namespace}/${md.name}` : md.name;
}

function requireInt(v: any, name: string, min: number): number {
    if (typeof v !== "number" || !Number.isInteger(v)) throw new Error(`"${name}" must be an integer, got ${JSON.stringify(v)}`);
    if (v < min) throw new Error(`Attribute ${name} value must be at least ${min}, got: ${v}`);
    return v;
}

// ---------------------------------------------------------------------------------------------------------
// random provider
// ---------------------------------------------------------------------------------------------------------

function randomDefaults(inputs: Record<string, any>): Record<string, any> {
    const numeric = (inputs.numeric ?? true) && (inputs.number ?? true);
    return {
        ...inputs,
        upper: inputs.upper ?? true,
        lower: inputs.lower ?? true,
        numeric,
        number: numeric,
        special: inputs.special ?? true,
        minUpper: inputs.minUpper ?? 0,
        minLower: inputs.minLower ?? 0,
        minNumeric: inputs.minNumeric ?? 0,
        minSpecial: inputs.minSpecial ?? 0,
    };
}

/** terraform-provider-random CreateString: mins of each class (regardless of the flags), fill, shuffle. */
function randomString(inputs: Record<string, any>): string {
    const p = randomDefaults(inputs);
    const length = requireInt(inputs.length, "length", 1);
    const mins = [p.minUpper, p.minLower, p.minNumeric, p.minSpecial].map((m, i) => requireInt(m, ["minUpper", "minLower", "minNumeric", "minSpecial"][i], 0));
    const sum = mins.reduce((a, b) => a + b, 0);
    if (length < sum) {
        throw new Error(`Attribute length value must be at least sum of min_upper + min_lower + min_numeric + min_special (${sum}), got: ${length}`);
    }
    const upperChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const lowerChars = "abcdefghijklmnopqrstuvwxyz";
    const numChars = "0123456789";
    const specialChars = inputs.overrideSpecial ? String(inputs.overrideSpecial) : "!@#$%&*()-_=+[]{}<>:?";
    let chars = "";
    if (p.upper) chars += upperChars;
    if (p.lower) chars += lowerChars;
    if (p.numeric) chars += numChars;
    if (p.special) chars += specialChars;
    if (chars === "") throw new Error("the character set specified is empty");
    const pick = (set: string, n: number): string[] => {
        const cps = Array.from(set);
        return Array.from({ length: n }, () => cps[crypto.randomInt(cps.length)]);
    };
    const result = [...pick(upperChars, mins[0]), ...pick(lowerChars, mins[1]), ...pick(numChars, mins[2]), ...pick(specialChars, mins[3])];
    result.push(...pick(chars, length - result.length));
    for (let i = result.length - 1; i > 0; i--) {
        const j = crypto.randomInt(i + 1);
        [result[i], result[j]] = [result[j], result[i]];
    }
    return result.join("");
}

function bcryptHash(password: string): string {
    // Go's golang.org/x/crypto/bcrypt (used by the provider) emits "$2a$"; the algorithm is identical.
    return bcrypt.hashSync(password, 10).replace(/^\$2b\$/, "$2a$");
}

// ---------------------------------------------------------------------------------------------------------
// Minimal DER encoder / decoder
// ---------------------------------------------------------------------------------------------------------

function derLen(n: number): Buffer {
    if (n < 0x80) return Buffer.from([n]);
    const bytes: number[] = [];
    while (n > 0) {
        bytes.unshift(n & 0xff);
        n = Math.floor(n / 256);
    }
    return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, ...parts: Buffer[]): Buffer {
    const content = Buffer.concat(parts);
    return Buffer.concat([Buffer.from([tag]), derLen(content.length), content]);
}
const seq = (...p: Buffer[]) => tlv(0x30, ...p);
const set = (...p: Buffer[]) => tlv(0x31, ...p);
function derUInt(magnitude: Buffer | bigint): Buffer {
    let b: Buffer;
    if (typeof magnitude === "bigint") {
        let hex = magnitude.toString(16);
        if (hex.length % 2) hex = "0" + hex;
        b = Buffer.from(hex, "hex");
    } else b = magnitude;
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    b = b.subarray(i);
    if (b.length === 0) b = Buffer.from([0]);
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return tlv(0x02, b);
}
function derOid(oid: string): Buffer {
    const parts = oid.split(".").map(Number);
    const out: number[] = [parts[0] * 40 + parts[1]];
    for (const p of parts.slice(2)) {
        const stack: number[] = [p & 0x7f];
        let v = Math.floor(p / 128);
        while (v > 0) {
            stack.unshift((v & 0x7f) | 0x80);
            v = Math.floor(v / 128);
        }
        out.push(...stack);
    }
    return tlv(0x06, Buffer.from(out));
}
const derBool = (b: boolean) => tlv(0x01, Buffer.from([b ? 0xff : 0]));
const derNull = () => Buffer.from([0x05, 0x00]);
const derOctet = (b: Buffer) => tlv(0x04, b);
const derBitString = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
function derTime(d: Date): Buffer {
    const p = (n: number, w = 2) => String(n).padStart(w, "0");
    const y = d.getUTCFullYear();
    const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
    // Go (and RFC 5280): UTCTime for 1950..2049, GeneralizedTime otherwise.
    if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, "ascii"));
    return tlv(0x18, Buffer.from(`${p(y, 4)}${rest}`, "ascii"));
}
function derString(s: string): Buffer {
    // Go's asn1 marshalling: PrintableString (allowing '*') when possible, else UTF8String.
    return /^[A-Za-z0-9 '()+,\-./:=?*]*$/.test(s) ? tlv(0x13, Buffer.from(s, "ascii")) : tlv(0x0c, Buffer.from(s, "utf8"));
}

interface DerNode {
    tag: number;
    raw: Buffer;
    content: Buffer;
}
function parseDer(buf: Buffer, off = 0): DerNode & { end: number } {
    const tag = buf[off];
    let len = buf[off + 1];
    let hdr = 2;
    if (len & 0x80) {
        const n = len & 0x7f;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
        hdr += n;
    }
    const end = off + hdr + len;
    if (end > buf.length) throw new Error("DER: truncated");
    return { tag, raw: buf.subarray(off, end), content: buf.subarray(off + hdr, end), end };
}
function derChildren(node: DerNode): DerNode[] {
    const res: DerNode[] = [];
    let off = 0;
    while (off < node.content.length) {
        const c = parseDer(node.content, off);
        res.push(c);
        off = c.end;
    }
    return res;
}
function decodeOid(content: Buffer): string {
    const parts = [Math.floor(content[0] / 40), content[0] % 40];
    let v = 0;
    for (const b of content.subarray(1)) {
        v = v * 128 + (b & 0x7f);
        if (!(b & 0x80)) {
            parts.push(v);
            v = 0;
        }
    }
    return parts.join(".");
}
function pemDecode(pem: string, expectedType: string): Buffer {
    const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
    if (!m) throw new Error(`failed to decode PEM of expected type "${expectedType}" from bytes`);
    if (m[1] !== expectedType) throw new Error(`invalid PEM type - expected "${expectedType}", got "${m[1]}"`);
    return Buffer.from(m[2].replace(/\s+/g, ""), "base64");
}
function pemEncode(type: string, der: Buffer): string {
    const b64 = der.toString("base64").match(/.{1,64}/g) ?? [];
    return `-----BEGIN ${type}-----\n${b64.join("\n")}\n-----END ${type}-----\n`;
}

// ---------------------------------------------------------------------------------------------------------
// tls provider
// ---------------------------------------------------------------------------------------------------------

type KeyAlgorithm = "RSA" | "ECDSA" | "ED25519";
const CURVES: Record<string, { node: string; ssh?: string; hash: string }> = {
    P224: { node: "secp224r1", hash: "sha256" },
    P256: { node: "prime256v1", ssh: "nistp256", hash: "sha256" },
    P384: { node: "secp384r1", ssh: "nistp384", hash: "sha384" },
    P521: { node: "secp521r1", ssh: "nistp521", hash: "sha512" },
};
const curveOfNode = (nodeName: string | undefined) => Object.entries(CURVES).find(([, c]) => c.node === nodeName)?.[0];

function keyAlgorithmOf(k: crypto.KeyObject): KeyAlgorithm {
    switch (k.asymmetricKeyType) {
        case "rsa":
            return "RSA";
        case "ec":
            return "ECDSA";
        case "ed25519":
            return "ED25519";
    }
    throw new Error(`unsupported private key type ${k.asymmetricKeyType}`);
}

/** Like the provider's parsePrivateKeyPEM: PKCS#1, SEC1 or PKCS#8 PEM. */
function parsePrivateKeyPem(pem: unknown, field: string): { key: crypto.KeyObject; algorithm: KeyAlgorithm } {
    if (typeof pem !== "string" || pem === "") throw new Error(`"${field}" is required (got ${JSON.stringify(pem)})`);
    const m = /-----BEGIN ([A-Z ]+)-----/.exec(pem);
    if (!m || !["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"].includes(m[1])) {
        throw new Error(`failed to decode ${field}: unsupported PEM preamble ${m ? `"${m[1]}"` : "(none)"}`);
    }
    const key = crypto.createPrivateKey(pem);
    return { key, algorithm: keyAlgorithmOf(key) };
}

function signatureAlgorithm(k: crypto.KeyObject): { algId: Buffer; hash: string | null } {
    switch (k.asymmetricKeyType) {
        case "rsa":
            return { algId: seq(derOid("1.2.840.113549.1.1.11"), derNull()), hash: "sha256" };
        case "ec": {
            const c = CURVES[curveOfNode(k.asymmetricKeyDetails?.namedCurve) ?? "P256"];
            const oid = { sha256: "1.2.840.10045.4.3.2", sha384: "1.2.840.10045.4.3.3", sha512: "1.2.840.10045.4.3.4" }[c.hash as "sha256"];
            return { algId: seq(derOid(oid)), hash: c.hash };
        }
        case "ed25519":
            return { algId: seq(derOid("1.3.101.112")), hash: null };
    }
    throw new Error(`unsupported key type ${k.asymmetricKeyType}`);
}

function spkiOf(pub: crypto.KeyObject): Buffer {
    return pub.export({ type: "spki", format: "der" });
}
function spkiBits(spki: Buffer): Buffer {
    const bits = derChildren(parseDer(spki))[1];
    return bits.content.subarray(1);
}

/** terraform-provider-tls generateSubjectKeyID: SHA-1 of PKCS#1 (RSA) / EC point / asn1(ed25519 key). */
function providerSubjectKeyId(pub: crypto.KeyObject): Buffer {
    let bytes: Buffer;
    switch (pub.asymmetricKeyType) {
        case "rsa":
            bytes = pub.export({ type: "pkcs1", format: "der" });
            break;
        case "ec":
            bytes = spkiBits(spkiOf(pub));
            break;
        case "ed25519":
            bytes = derOctet(spkiBits(spkiOf(pub)));
            break;
        default:
            throw new Error(`unsupported public key type ${pub.asymmetricKeyType}`);
    }
    return crypto.createHash("sha1").update(bytes).digest();
}

function privateKeyDefaults(inputs: Record<string, any>) {
    return { ecdsaCurve: inputs.ecdsaCurve ?? "P224", rsaBits: inputs.rsaBits ?? 2048 };
}

function createPrivateKey(inputs: Record<string, any>) {
    const { ecdsaCurve, rsaBits } = privateKeyDefaults(inputs);
    const algorithm = inputs.algorithm;
    let pair: crypto.KeyPairKeyObjectResult;
    let privateKeyPem: string;
    if (algorithm === "RSA") {
        requireInt(rsaBits, "rsa_bits", 1);
        pair = crypto.generateKeyPairSync("rsa", { modulusLength: rsaBits, publicExponent: 65537 });
        privateKeyPem = pair.privateKey.export({ type: "pkcs1", format: "pem" }) as string;
    } else if (algorithm === "ECDSA") {
        const curve = CURVES[ecdsaCurve];
        if (!curve) {
            throw new Error(`Attribute ecdsa_curve value must be one of: ["P224" "P256" "P384" "P521"], got: "${ecdsaCurve}"`);
        }
        pair = crypto.generateKeyPairSync("ec", { namedCurve: curve.node });
        privateKeyPem = pair.privateKey.export({ type: "sec1", format: "pem" }) as string;
    } else if (algorithm === "ED25519") {
        pair = crypto.generateKeyPairSync("ed25519");
        privateKeyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    } else {
        throw new Error(`Attribute algorithm value must be one of: ["RSA" "ECDSA" "ED25519"], got: ${JSON.stringify(algorithm)}`);
    }
    const pub = publicKeyOutputs(pair.privateKey);
    const outputs = {
        ...inputs,
        ecdsaCurve,
        rsaBits,
        privateKeyPem,
        privateKeyPemPkcs8: pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
        privateKeyOpenssh: opensshPrivateKey(pair.privateKey),
        ...pub,
    };
    return { id: crypto.createHash("sha1").update(pub.publicKeyPem).digest("hex"), outputs };
}

// --- OpenSSH encodings (best effort; P224 has none, as in the real provider) --------------------------------
const sshString = (b: Buffer | string) => {
    const buf = typeof b === "string" ? Buffer.from(b) : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    return Buffer.concat([len, buf]);
};
const sshUint32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
};
function sshMpint(b64url: string): Buffer {
    let b = Buffer.from(b64url, "base64url");
    let i = 0;
    while (i < b.length && b[i] === 0) i++;
    b = b.subarray(i);
    if (b.length && b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return sshString(b);
}
function sshPublicBlob(k: crypto.KeyObject): { type: string; blob: Buffer } | undefined {
    const jwk = k.export({ format: "jwk" }) as crypto.JsonWebKey;
    if (k.asymmetricKeyType === "rsa") {
        return { type: "ssh-rsa", blob: Buffer.concat([sshString("ssh-rsa"), sshMpint(jwk.e!), sshMpint(jwk.n!)]) };
    }
    if (k.asymmetricKeyType === "ed25519") {
        return { type: "ssh-ed25519", blob: Buffer.concat([sshString("ssh-ed25519"), sshString(Buffer.from(jwk.x!, "base64url"))]) };
    }
    if (k.asymmetricKeyType === "ec") {
        const ssh = CURVES[curveOfNode(k.asymmetricKeyDetails?.namedCurve) ?? ""]?.ssh;
        if (!ssh) return undefined;
        const point = spkiBits(spkiOf(k.type === "private" ? crypto.createPublicKey(k) : k));
        const type = `ecdsa-sha2-${ssh}`;
        return { type, blob: Buffer.concat([sshString(type), sshString(ssh), sshString(point)]) };
    }
    return undefined;
}
function opensshPrivateKey(priv: crypto.KeyObject): string {
    const pub = sshPublicBlob(priv);
    if (!pub) return "";
    const jwk = priv.export({ format: "jwk" }) as crypto.JsonWebKey;
    let fields: Buffer;
    if (priv.asymmetricKeyType === "rsa") {
        fields = Buffer.concat([jwk.n!, jwk.e!, jwk.d!, jwk.qi!, jwk.p!, jwk.q!].map(sshMpint));
    } else if (priv.asymmetricKeyType === "ed25519") {
        const pk = Buffer.from(jwk.x!, "base64url");
        fields = Buffer.concat([sshString(pk), sshString(Buffer.concat([Buffer.from(jwk.d!, "base64url"), pk]))]);
    } else {
        const ssh = CURVES[curveOfNode(priv.asymmetricKeyDetails?.namedCurve) ?? ""].ssh!;
        const point = spkiBits(spkiOf(crypto.createPublicKey(priv)));
        fields = Buffer.concat([sshString(ssh), sshString(point), sshMpint(jwk.d!)]);
    }
    const check = crypto.randomBytes(4).readUInt32BE();
    let privSection = Buffer.concat([sshUint32(check), sshUint32(check), sshString(pub.type), fields, sshString("")]);
    const pad: number[] = [];
    for (let i = 1; (privSection.length + pad.length) % 8 !== 0; i++) pad.push(i);
    privSection = Buffer.concat([privSection, Buffer.from(pad)]);
    const body = Buffer.concat([
        Buffer.from("openssh-key-v1\0", "binary"),
        sshString("none"),
        sshString("none"),
        sshString(""),
        sshUint32(1),
        sshString(pub.blob),
        sshString(privSection),
    ]);
    // Go's pem.Encode wraps at 64 columns (ssh-keygen uses 70; both parse).
    return pemEncode("OPENSSH PRIVATE KEY", body);
}

function publicKeyOutputs(priv: crypto.KeyObject) {
    const pubKey = crypto.createPublicKey(priv);
    const ssh = sshPublicBlob(pubKey);
    const md5 = ssh ? crypto.createHash("md5").update(ssh.blob).digest("hex").match(/../g)!.join(":") : "";
    return {
        publicKeyPem: pubKey.export({ type: "spki", format: "pem" }) as string,
        publicKeyOpenssh: ssh ? `${ssh.type} ${ssh.blob.toString("base64")}\n` : "",
        publicKeyFingerprintSha256: ssh ? `SHA256:${crypto.createHash("sha256").update(ssh.blob).digest("base64").replace(/=+$/, "")}` : "",
        publicKeyFingerprintMd5: md5,
    };
}

// --- Names --------------------------------------------------------------------------------------------------
interface DN {
    country?: string[];
    province?: string[];
    locality?: string[];
    streetAddress?: string[];
    postalCode?: string[];
    organization?: string[];
    organizationalUnit?: string[];
    commonName?: string;
    serialNumber?: string;
    emailAddress?: string;
}
const DN_OIDS: [keyof DN, string][] = [
    ["country", "2.5.4.6"],
    ["province", "2.5.4.8"],
    ["locality", "2.5.4.7"],
    ["streetAddress", "2.5.4.9"],
    ["postalCode", "2.5.4.17"],
    ["organization", "2.5.4.10"],
    ["organizationalUnit", "2.5.4.11"],
    ["commonName", "2.5.4.3"],
    ["serialNumber", "2.5.4.5"],
];
const OID_EMAIL = "1.2.840.113549.1.9.1";

function dnFromInput(s: Record<string, any> | undefined): DN {
    const dn: DN = {};
    if (!s) return dn;
    const one = (v: any) => (v === undefined || v === null ? undefined : [String(v)]);
    dn.commonName = s.commonName ?? undefined;
    dn.organization = one(s.organization);
    dn.organizationalUnit = one(s.organizationalUnit);
    dn.streetAddress = Array.isArray(s.streetAddresses) ? s.streetAddresses.map(String) : undefined;
    dn.locality = one(s.locality);
    dn.province = one(s.province);
    dn.country = one(s.country);
    dn.postalCode = one(s.postalCode);
    dn.serialNumber = s.serialNumber ?? undefined;
    dn.emailAddress = s.emailAddress ?? undefined;
    return dn;
}

/** pkix.Name.ToRDNSequence. */
function encodeName(dn: DN): Buffer {
    const rdns: Buffer[] = [];
    for (const [field, oid] of DN_OIDS) {
        const v = dn[field];
        if (v === undefined) continue;
        if (Array.isArray(v)) {
            if (v.length === 0) continue;
            rdns.push(set(...v.map((x) => seq(derOid(oid), derString(x)))));
        } else if (v.length > 0) {
            rdns.push(set(seq(derOid(oid), derString(v))));
        }
    }
    if (dn.emailAddress !== undefined) {
        rdns.push(set(seq(derOid(OID_EMAIL), tlv(0x16, Buffer.from(dn.emailAddress, "ascii")))));
    }
    return seq(...rdns);
}

/** pkix.Name.FillFromRDNSequence (attributes Go does not map, like emailAddress, are dropped). */
function parseName(node: DerNode): DN {
    const dn: DN = {};
    for (const rdn of derChildren(node)) {
        for (const atv of derChildren(rdn)) {
            const [oidNode, valNode] = derChildren(atv);
            const oid = decodeOid(oidNode.content);
            const value = valNode.content.toString(valNode.tag === 0x0c ? "utf8" : "latin1");
            const field = DN_OIDS.find(([, o]) => o === oid)?.[0];
            if (!field) continue;
            if (field === "commonName" || field === "serialNumber") dn[field] = value;
            else ((dn[field] as string[] | undefined) ??= []).push(value);
        }
    }
    return dn;
}
const dnIsEmpty = (dn: DN) => derChildren(parseDer(encodeName(dn))).length === 0;

// --- Extensions ---------------------------------------------------------------------------------------------
const KEY_USAGES: Record<string, number> = {
    digital_signature: 1 << 0,
    content_commitment: 1 << 1,
    key_encipherment: 1 << 2,
    data_encipherment: 1 << 3,
    key_agreement: 1 << 4,
    cert_signing: 1 << 5,
    crl_signing: 1 << 6,
    encipher_only: 1 << 7,
    decipher_only: 1 << 8,
};
const EXT_KEY_USAGES: Record<string, string> = {
    any_extended: "2.5.29.37.0",
    server_auth: "1.3.6.1.5.5.7.3.1",
    client_auth: "1.3.6.1.5.5.7.3.2",
    code_signing: "1.3.6.1.5.5.7.3.3",
    email_protection: "1.3.6.1.5.5.7.3.4",
    ipsec_end_system: "1.3.6.1.5.5.7.3.5",
    ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
    ipsec_user: "1.3.6.1.5.5.7.3.7",
    timestamping: "1.3.6.1.5.5.7.3.8",
    ocsp_signing: "1.3.6.1.5.5.7.3.9",
    microsoft_server_gated_crypto: "1.3.6.1.4.1.311.10.3.3",
    netscape_server_gated_crypto: "2.16.840.1.113730.4.1",
    microsoft_commercial_code_signing: "1.3.6.1.4.1.311.2.1.22",
    microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

function parseAllowedUses(uses: unknown): { keyUsage: number; extKeyUsage: string[] } {
    if (!Array.isArray(uses)) throw new Error(`"allowedUses" is required (a list of strings), got ${JSON.stringify(uses)}`);
    let keyUsage = 0;
    const extKeyUsage: string[] = [];
    uses.forEach((u, i) => {
        if (!(u in KEY_USAGES) && !(u in EXT_KEY_USAGES)) {
            const all = [...Object.keys(KEY_USAGES), ...Object.keys(EXT_KEY_USAGES)].sort();
            const snake = String(u).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
            throw new Error(
                `Attribute allowed_uses[${i}] value must be one of: [${all.map((a) => `"${a}"`).join(" ")}], got: "${u}"` +
                    (snake !== u && all.includes(snake) ? ` (the provider wants snake_case: "${snake}")` : ""),
            );
        }
        if (u in KEY_USAGES) keyUsage |= KEY_USAGES[u];
        if (u in EXT_KEY_USAGES) extKeyUsage.push(EXT_KEY_USAGES[u]);
    });
    return { keyUsage, extKeyUsage };
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
    return critical ? seq(derOid(oid), derBool(true), derOctet(value)) : seq(derOid(oid), derOctet(value));
}

function keyUsageValue(ku: number): Buffer {
    const rev = (b: number) => {
        let r = 0;
        for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 0x80 >> i;
        return r;
    };
    const a = [rev(ku & 0xff), rev((ku >> 8) & 0xff)];
    const bytes = Buffer.from(a[1] !== 0 ? a : [a[0]]);
    // number of unused trailing bits after the last set bit
    const last = bytes[bytes.length - 1];
    let unused = 0;
    while (unused < 8 && !(last & (1 << unused))) unused++;
    return derBitString(bytes, last === 0 ? 0 : unused);
}

function ipToBytes(ip: string): Buffer {
    const v = net.isIP(ip);
    if (v === 4) return Buffer.from(ip.split(".").map(Number));
    if (v !== 6) throw new Error(`invalid IP address "${ip}"`);
    let s = ip;
    let tail: number[] = [];
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    if (v4) {
        const b = v4[1].split(".").map(Number);
        tail = [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
        s = s.slice(0, -v4[1].length) + "0:0";
    }
    const [head, rest] = s.split("::");
    const h = head ? head.split(":") : [];
    const r = rest !== undefined ? (rest ? rest.split(":") : []) : [];
    const groups = rest !== undefined ? [...h, ...Array(8 - h.length - r.length).fill("0"), ...r] : h;
    const words = groups.map((g) => parseInt(g || "0", 16));
    if (tail.length) words.splice(6, 2, ...tail);
    const buf = Buffer.alloc(16);
    words.forEach((w, i) => buf.writeUInt16BE(w, i * 2));
    // Go: an IPv4-mapped address is encoded in 4 bytes (ip.To4()).
    if (buf.subarray(0, 10).every((x) => x === 0) && buf[10] === 0xff && buf[11] === 0xff) return buf.subarray(12);
    return buf;
}

interface SANs {
    dns: string[];
    ips: Buffer[];
    uris: string[];
}
function sanValue(s: SANs): Buffer {
    return seq(
        ...s.dns.map((d) => tlv(0x82, Buffer.from(d, "ascii"))),
        ...s.ips.map((ip) => tlv(0x87, ip)),
        ...s.uris.map((u) => tlv(0x86, Buffer.from(u, "ascii"))),
    );
}
function sansFromInput(inputs: Record<string, any>): SANs {
    const list = (v: any) => (Array.isArray(v) ? v.map(String) : []);
    return { dns: list(inputs.dnsNames), ips: list(inputs.ipAddresses).map(ipToBytes), uris: list(inputs.uris) };
}
const hasSANs = (s: SANs) => s.dns.length + s.ips.length + s.uris.length > 0;

function signDer(tbs: Buffer, signer: crypto.KeyObject): Buffer {
    const { algId, hash } = signatureAlgorithm(signer);
    const sig = crypto.sign(hash, tbs, signer);
    return seq(tbs, algId, derBitString(sig));
}

// --- Certificates -------------------------------------------------------------------------------------------
interface CertTemplate {
    subject: DN;
    sans: SANs;
    isCA: boolean;
    maxPathLength?: number;
    keyUsage: number;
    extKeyUsage: string[];
    subjectKeyId?: Buffer;
    authorityKeyId?: Buffer;
}

/** Go x509.CreateCertificate as driven by terraform-provider-tls createCertificate(). */
function buildCertificate(t: CertTemplate, issuerName: Buffer, subjectPub: crypto.KeyObject, signer: crypto.KeyObject, validityPeriodHours: number) {
    const serial = BigInt("0x" + crypto.randomBytes(16).toString("hex"));
    const notBefore = new Date();
    const notAfter = new Date(notBefore.getTime() + validityPeriodHours * 3600_000);
    const subjectName = encodeName(t.subject);
    const exts: Buffer[] = [];
    if (t.keyUsage !== 0) exts.push(extension("2.5.29.15", true, keyUsageValue(t.keyUsage)));
    if (t.extKeyUsage.length > 0) exts.push(extension("2.5.29.37", false, seq(...t.extKeyUsage.map(derOid))));
    const bc: Buffer[] = [];
    if (t.isCA) {
        bc.push(derBool(true));
        if (t.maxPathLength !== undefined && t.maxPathLength > 0) bc.push(derUInt(BigInt(t.maxPathLength)));
    }
    exts.push(extension("2.5.29.19", true, seq(...bc)));
    if (t.subjectKeyId?.length) exts.push(extension("2.5.29.14", false, derOctet(t.subjectKeyId)));
    if (t.authorityKeyId?.length) exts.push(extension("2.5.29.35", false, seq(tlv(0x80, t.authorityKeyId))));
    if (hasSANs(t.sans)) exts.push(extension("2.5.29.17", dnIsEmpty(t.subject), sanValue(t.sans)));

    const { algId } = signatureAlgorithm(signer);
    const tbs = seq(
        tlv(0xa0, derUInt(2n)),
        derUInt(serial),
        algId,
        issuerName,
        seq(derTime(notBefore), derTime(notAfter)),
        subjectName,
        spkiOf(subjectPub),
        tlv(0xa3, seq(...exts)),
    );
    const der = signDer(tbs, signer);
    return {
        certPem: pemEncode("CERTIFICATE", der),
        serial: serial.toString(10),
        validityStartTime: notBefore.toISOString(),
        validityEndTime: notAfter.toISOString(),
    };
}

function certDefaults(inputs: Record<string, any>) {
    return {
        earlyRenewalHours: inputs.earlyRenewalHours ?? 0,
        isCaCertificate: inputs.isCaCertificate ?? false,
        setSubjectKeyId: inputs.setSubjectKeyId ?? false,
        readyForRenewal: false,
    };
}

function createSelfSignedCert(inputs: Record<string, any>) {
    if (inputs.privateKeyPemWo !== undefined) throw new Error("privateKeyPemWo is not emulated; use privateKeyPem");
    const { key, algorithm } = parsePrivateKeyPem(inputs.privateKeyPem, "private_key_pem");
    const validity = requireInt(inputs.validityPeriodHours, "validity_period_hours", 0);
    const pub = crypto.createPublicKey(key);
    const { keyUsage, extKeyUsage } = parseAllowedUses(inputs.allowedUses);
    const subject = dnFromInput(inputs.subject);
    const isCA = !!inputs.isCaCertificate;
    if (isCA && dnIsEmpty(subject)) {
        throw new Error("Invalid Certificate Subject: Must contain at least one Distinguished Name when creating Certificate Authority (CA)");
    }
    const ski = isCA || inputs.setSubjectKeyId ? providerSubjectKeyId(pub) : undefined;
    let aki: Buffer | undefined;
    if (inputs.setAuthorityKeyId) {
        if (!ski) throw new Error("Invalid Certificate Authority: Could not determine Authority Key Identifier");
        aki = ski;
    }
    // Go: the parent is the template itself, so issuer == subject and AKI is only the explicit one.
    const built = buildCertificate(
        { subject, sans: sansFromInput(inputs), isCA, maxPathLength: inputs.maxPathLength, keyUsage, extKeyUsage, subjectKeyId: ski, authorityKeyId: aki },
        encodeName(subject),
        pub,
        key,
        validity,
    );
    return {
        id: built.serial,
        outputs: {
            ...inputs,
            ...certDefaults(inputs),
            setAuthorityKeyId: inputs.setAuthorityKeyId ?? false,
            keyAlgorithm: algorithm,
            certPem: built.certPem,
            validityStartTime: built.validityStartTime,
            validityEndTime: built.validityEndTime,
        },
    };
}

function createCertRequest(inputs: Record<string, any>) {
    if (inputs.privateKeyPemWo !== undefined) throw new Error("privateKeyPemWo is not emulated; use privateKeyPem");
    const { key, algorithm } = parsePrivateKeyPem(inputs.privateKeyPem, "private_key_pem");
    const subject = dnFromInput(inputs.subject);
    const sans = sansFromInput(inputs);
    // Go x509.CreateCertificateRequest: extensionRequest attribute only when there are SANs (non-critical).
    const attrs = hasSANs(sans) ? [seq(derOid("1.2.840.113549.1.9.14"), set(seq(extension("2.5.29.17", false, sanValue(sans)))))] : [];
    const info = seq(derUInt(0n), encodeName(subject), spkiOf(crypto.createPublicKey(key)), tlv(0xa0, ...attrs));
    const certRequestPem = pemEncode("CERTIFICATE REQUEST", signDer(info, key));
    return {
        id: crypto.createHash("sha1").update(certRequestPem).digest("hex"),
        outputs: { ...inputs, keyAlgorithm: algorithm, certRequestPem },
    };
}

interface ParsedCSR {
    subject: DN;
    publicKey: crypto.KeyObject;
    sans: SANs;
}
function parseCSR(pem: unknown): ParsedCSR {
    if (typeof pem !== "string") throw new Error(`"certRequestPem" is required, got ${JSON.stringify(pem)}`);
    const der = pemDecode(pem, "CERTIFICATE REQUEST");
    const [info] = derChildren(parseDer(der));
    const [, subjectNode, spkiNode, ...rest] = derChildren(info);
    const sans: SANs = { dns: [], ips: [], uris: [] };
    const attrsNode = rest.find((n) => n.tag === 0xa0);
    for (const attr of attrsNode ? derChildren(attrsNode) : []) {
        const [oid, values] = derChildren(attr);
        if (decodeOid(oid.content) !== "1.2.840.113549.1.9.14") continue;
        for (const exts of derChildren(values)) {
            for (const ext of derChildren(exts)) {
                const parts = derChildren(ext);
                if (decodeOid(parts[0].content) !== "2.5.29.17") continue;
                const value = parseDer(parts[parts.length - 1].content);
                for (const gn of derChildren(value)) {
                    if (gn.tag === 0x82) sans.dns.push(gn.content.toString("ascii"));
                    else if (gn.tag === 0x87) sans.ips.push(normalizeIpBytes(gn.content));
                    else if (gn.tag === 0x86) sans.uris.push(gn.content.toString("ascii"));
                }
            }
        }
    }
    return {
        subject: parseName(subjectNode),
        publicKey: crypto.createPublicKey({ key: spkiNode.raw, format: "der", type: "spki" }),
        sans,
    };
}
function normalizeIpBytes(b: Buffer): Buffer {
    if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
        return Buffer.from(b.subarray(12));
    }
    return Buffer.from(b);
}

interface ParsedCert {
    rawSubject: Buffer;
    spki: Buffer;
    subjectKeyId?: Buffer;
    isCA: boolean;
}
function parseCert(pem: unknown): ParsedCert {
    if (typeof pem !== "string") throw new Error(`"caCertPem" is required, got ${JSON.stringify(pem)}`);
    const der = pemDecode(pem, "CERTIFICATE");
    const [tbs] = derChildren(parseDer(der));
    const fields = derChildren(tbs);
    const hasVersion = fields[0].tag === 0xa0;
    const f = hasVersion ? fields.slice(1) : fields;
    // serial, sigAlg, issuer, validity, subject, spki, [1], [2], [3]
    const result: ParsedCert = { rawSubject: Buffer.from(f[4].raw), spki: Buffer.from(f[5].raw), isCA: false };
    const extsNode = f.find((n) => n.tag === 0xa3);
    for (const ext of extsNode ? derChildren(derChildren(extsNode)[0]) : []) {
        const parts = derChildren(ext);
        const oid = decodeOid(parts[0].content);
        const value = parts[parts.length - 1].content;
        if (oid === "2.5.29.14") result.subjectKeyId = Buffer.from(parseDer(value).content);
        if (oid === "2.5.29.19") {
            const bc = derChildren(parseDer(value));
            result.isCA = bc.length > 0 && bc[0].tag === 0x01 && bc[0].content[0] !== 0;
        }
    }
    return result;
}

function createLocallySignedCert(inputs: Record<string, any>) {
    if (inputs.caPrivateKeyPemWo !== undefined) throw new Error("caPrivateKeyPemWo is not emulated; use caPrivateKeyPem");
    const csr = parseCSR(inputs.certRequestPem);
    const { key: caKey, algorithm } = parsePrivateKeyPem(inputs.caPrivateKeyPem, "ca_private_key_pem");
    const ca = parseCert(inputs.caCertPem);
    const validity = requireInt(inputs.validityPeriodHours, "validity_period_hours", 0);
    const { keyUsage, extKeyUsage } = parseAllowedUses(inputs.allowedUses);
    // Go x509.CreateCertificate refuses a signer that does not match the parent certificate.
    if (!spkiOf(crypto.createPublicKey(caKey)).equals(ca.spki)) {
        throw new Error("Failed to create certificate: x509: provided PrivateKey doesn't match parent's PublicKey");
    }
    const isCA = !!inputs.isCaCertificate;
    if (isCA && dnIsEmpty(csr.subject)) {
        throw new Error("Invalid Certificate Subject: Must contain at least one Distinguished Name when creating Certificate Authority (CA)");
    }
    const ski = isCA || inputs.setSubjectKeyId ? providerSubjectKeyId(csr.publicKey) : undefined;
    const subjectName = encodeName(csr.subject);
    // Go: AKI = parent's SKI whenever issuer != subject.
    const aki = !ca.rawSubject.equals(subjectName) && ca.subjectKeyId?.length ? ca.subjectKeyId : undefined;
    const built = buildCertificate(
        { subject: csr.subject, sans: csr.sans, isCA, maxPathLength: inputs.maxPathLength, keyUsage, extKeyUsage, subjectKeyId: ski, authorityKeyId: aki },
        ca.rawSubject,
        csr.publicKey,
        caKey,
        validity,
    );
    return {
        id: built.serial,
        outputs: {
            ...inputs,
            ...certDefaults(inputs),
            caKeyAlgorithm: algorithm,
            certPem: built.certPem,
            validityStartTime: built.validityStartTime,
            validityEndTime: built.validityEndTime,
        },
    };
}
