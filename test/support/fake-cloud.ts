/**
 * FakeCloud: Pulumi mocks that stand for the engine and the providers of exactly the resources this
 * program makes, producing REAL artifacts from the program's own inputs:
 *
 *  - tls: ECDSA P-256 and RSA keys (node:crypto), X.509 certificates and PKCS#10 requests DER-encoded as
 *    terraform-provider-tls (Go crypto/x509) writes them: extension order and criticality, BasicConstraints
 *    always present, an SKI on the CA, the leaf's AKI = the CA's SKI, the leaf's subject and SANs taken
 *    from the CSR, issuer = the CA's subject.
 *  - random: RandomPassword (crypto-random, the provider's character classes) and RandomBytes.
 *  - kubernetes: inputs echoed, auto-names (`<name>-<8 hex>`, written into the inputs as the provider's Check
 *    does), a ClusterIP for every Service; an explicit provider (a program that makes its own cluster) is
 *    recorded, and so is which provider each resource uses. The cluster's objects are kept apart from the
 *    state and outlive it, as pulumi-kubernetes v4.29.0+ treats them (its release notes, PR #4278): a resource
 *    with no state is created client-side, so an object of that kind, namespace and name that exists already
 *    fails with AlreadyExists; a Patch resource (`...Patch` types) is a server-side apply, which creates the
 *    object when missing (issue #2194) and merges into it when present, refusing a change to an immutable
 *    field of a claim; deleting a Patch resource leaves its object; deleting a Namespace deletes what is in it.
 *
 * Engine: state is kept per URN across runs of one FakeCloud (each `runProgram` is another `pulumi up` on
 * the same stack): identical inputs give identical outputs; changed inputs, or a certificate inside its
 * early-renewal window, replace (a Kubernetes object is updated in place unless its name or namespace
 * changes). A registration whose URN has no state takes over the state of its first `aliases` URN that has
 * some (pulumi#2404: renames, re-typing, re-parenting). A resource the program no longer registers is
 * deleted at the end of a successful run, or only forgotten when its state has `retainOnDelete`. `steps`
 * records what the engine did (or plans, in preview) to each URN. `ignoreChanges` paths keep their old input values once a resource
 * exists, as the engine does; `destroy()` deletes what the state holds except `retainOnDelete` resources. Secret inputs and `additionalSecretOutputs` make outputs secret. Preview
 * returns computed outputs unknown. An input the program does not pass today is refused ("not emulated")
 * rather than ignored, so a new use shows up as a failing test instead of a silently wrong artifact.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";

export interface RecordedResource {
    type: string;
    name: string;
    urn: string;
    /** Inputs as the program passed them, secrets unwrapped (unknowns, in preview, become undefined). */
    inputs: Record<string, any>;
    /** Outputs as the program sees them, secrets unwrapped; computed outputs are absent when unknown. */
    outputs: Record<string, any>;
    /** Top-level input keys whose value was (or contained) a secret. */
    secretInputs: string[];
    /** Physical id ("" while unknown, in preview). */
    id: string;
    /** The explicit provider, as the engine references it (`<urn>::<id>`); "" for the default provider. */
    provider: string;
    /** The `retainOnDelete` resource option. */
    retainOnDelete: boolean;
    /** The `aliases` option, as the engine resolves them to URNs. */
    aliases: string[];
}

/** What the engine did to one resource in a run (or, in preview, plans to do). */
export interface Step {
    urn: string;
    type: string;
    /** `forget`: dropped from the program (or destroyed) with `retainOnDelete`: gone from the state, left in the cloud. */
    op: "create" | "same" | "update" | "replace" | "delete" | "forget";
    /** The URN whose state it took over through an alias. */
    from?: string;
}

/** A resource's state as `exportState` writes it and `importState` reads it (a stack export, trimmed). */
export interface SavedResource {
    urn: string;
    type: string;
    inputs: Record<string, any>;
    outputs: Record<string, any>;
    id: string;
    retainOnDelete: boolean;
}

export interface FakeCloudOptions {
    /** The ClusterIP the API server gives a Service, by the Service's Pulumi logical name. Default: 10.96.0.10. */
    clusterIP?: (serviceName: string) => string;
    /** `pulumi preview`: computed outputs (keys, certificates, passwords, ClusterIPs) come back unknown. Default: false. */
    preview?: boolean;
}

/** Sentinel understood by the Pulumi runtime as "unknown" (runtime/rpc.js `unknownValue`). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

interface Created {
    id: string;
    outputs: Record<string, any>;
}

/** A provider resource the fake makes: the inputs the program passes it, and how it is created. */
interface Emulated {
    inputs: string[];
    create(inputs: Record<string, any>): Created;
    /** Replaced by `pulumi up` once inside `earlyRenewalHours` of `validityEndTime`. */
    renews?: boolean;
}

/** What the SDK tells the engine about a registration beyond its inputs (captured from the monitor). */
interface Registration {
    parent: string;
    additionalSecretOutputs: string[];
    ignoreChanges: string[];
    retainOnDelete: boolean;
    aliases: string[];
}

interface StateEntry {
    inputs: Record<string, any>;
    inputsJSON: string;
    created: Created;
    type: string;
    retainOnDelete: boolean;
}

export class FakeCloud implements pulumi.runtime.Mocks {
    /** What the current run registered, in registration order (which follows dependencies). */
    readonly resources: RecordedResource[] = [];
    /** Registrations the providers refused in the current run (a real `pulumi up` would fail). */
    readonly errors: Error[] = [];
    /** What the engine did to each resource in the current run, in order; deletions come last. */
    readonly steps: Step[] = [];

    private readonly state = new Map<string, StateEntry>();
    /** The cluster's objects by `<kind>/<namespace>/<name>`: what the API server holds, apart from the state. */
    private readonly cluster = new Map<string, Record<string, any>>();
    /** Server-side apply's field ownership of each object's labels: label key to the managers that applied it, with their value. */
    private readonly labelOwners = new Map<string, Map<string, Map<string, string>>>();
    /** Each Kubernetes resource's field manager, by URN: chosen at its create, kept while the state holds it. */
    private readonly managers = new Map<string, string>();
    private readonly registering: Registration[] = [];
    /** URNs the current run registered, or whose state it took over through an alias. */
    private readonly seen = new Set<string>();

    constructor(private readonly opts: FakeCloudOptions = {}) {}

    /**
     * Starts another run on the same state: forgets the last run's records, installs these mocks, and hooks
     * the MockMonitor so a registration's parent (for its URN) and additionalSecretOutputs reach newResource.
     */
    async beginRun(project: string, stack: string): Promise<void> {
        this.resources.length = 0;
        this.errors.length = 0;
        this.steps.length = 0;
        this.seen.clear();
        await pulumi.runtime.setMocks(this, project, stack, !!this.opts.preview);
        const monitor = (pulumi.runtime as any).getMonitor?.();
        if (typeof monitor?.registerResource !== "function") throw new Error("FakeCloud: the Pulumi runtime has no MockMonitor to hook");
        if (monitor.__fakeCloud === this) return;
        const register = monitor.registerResource;
        monitor.registerResource = (req: any, callback: any) => {
            // MockMonitor calls mocks.newResource synchronously, before its first await, so a stack works.
            this.registering.push({
                parent: req.getParent(),
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                ignoreChanges: req.getIgnorechangesList(),
                retainOnDelete: req.getRetainondelete() === true,
                aliases: resolveAliases(req),
            });
            try {
                return register.call(monitor, req, callback);
            } finally {
                this.registering.pop();
            }
        };
        monitor.__fakeCloud = this;
    }

    /**
     * `pulumi destroy` of the stack: every resource the state holds is deleted, except those registered
     * with `retainOnDelete`, which leave the state but stay in the cluster. Returns both, by URN.
     */
    destroy(): { deleted: string[]; retained: string[] } {
        const result = { deleted: [] as string[], retained: [] as string[] };
        // The engine deletes dependents first: the reverse of the order the state holds.
        for (const [urn, entry] of [...this.state].reverse()) {
            (entry.retainOnDelete ? result.retained : result.deleted).push(urn);
            this.deleteFromCluster(entry);
        }
        this.state.clear();
        this.managers.clear();
        return result;
    }

    /**
     * The end of a successful `pulumi up`: what the state holds that this run did not register is deleted
     * (forgotten with `retainOnDelete`). In preview the steps are planned and nothing changes.
     */
    finishRun(): void {
        for (const [urn, entry] of [...this.state].reverse()) {
            if (this.seen.has(urn)) continue;
            this.steps.push({ urn, type: entry.type, op: entry.retainOnDelete ? "forget" : "delete" });
            if (this.opts.preview) continue;
            this.deleteFromCluster(entry);
            this.state.delete(urn);
            this.managers.delete(urn);
        }
    }

    /** The state, as a stack export would give it (secrets unwrapped; keep fixtures to what holds none). */
    exportState(): SavedResource[] {
        return [...this.state].map(([urn, e]) => ({
            urn,
            type: e.type,
            inputs: structuredClone(e.inputs),
            outputs: structuredClone(e.created.outputs),
            id: e.created.id,
            retainOnDelete: e.retainOnDelete,
        }));
    }

    /** Starts from a saved state (an earlier version's stack), its Kubernetes objects in the cluster too. */
    importState(saved: readonly SavedResource[]): void {
        for (const r of saved) {
            const created = { id: r.id, outputs: structuredClone(r.outputs) };
            this.state.set(r.urn, {
                inputs: structuredClone(r.inputs),
                inputsJSON: canonicalJSON(r.inputs),
                created,
                type: r.type,
                retainOnDelete: r.retainOnDelete,
            });
            if (!r.type.startsWith("kubernetes:")) continue;
            const key = clusterKey(r.type, r.outputs);
            this.cluster.set(key, structuredClone(r.outputs));
            // Applied by that version's provider, under a field manager of its own.
            const manager = randomManager();
            this.managers.set(r.urn, manager);
            this.own(key, r.outputs, manager);
        }
    }

    /** The object the cluster holds (undefined when there is none), e.g. `("core/v1:Namespace", "", "registry")`. */
    clusterObject(kind: string, namespace: string, name: string): Record<string, any> | undefined {
        const o = this.cluster.get(`${kind}/${namespace}/${name}`);
        return o && structuredClone(o);
    }

    /** `kubectl label <kind> <name> <label>-`: the label, and so every manager's ownership of it, removed. */
    removeLabel(kind: string, namespace: string, name: string, label: string): void {
        const key = `${kind}/${namespace}/${name}`;
        const o = this.cluster.get(key);
        if (o?.metadata?.labels) delete o.metadata.labels[label];
        this.labelOwners.get(key)?.delete(label);
    }

    /** The next runs are `pulumi preview`s (true) or `pulumi up`s (false) of the same stack and cluster. */
    setPreview(on: boolean): void {
        this.opts.preview = on;
    }

    /** Every object the cluster holds, as `<kind>/<namespace>/<name>`. */
    clusterKeys(): string[] {
        return [...this.cluster.keys()].sort();
    }

    /**
     * Server-side apply: a field another manager owns with another value is a conflict (HTTP 409), unless
     * the apply is forced (`pulumi.com/patchForce`). Modelled for labels, the fields the kept objects share,
     * and a claim's `spec.resources.requests.storage`, the one field of its spec that may change.
     */
    private refuseConflicts(key: string, applied: Record<string, any>, manager: string): void {
        if (applied.metadata?.annotations?.["pulumi.com/patchForce"] === "true") return;
        const owners = this.labelOwners.get(key);
        for (const [field, value] of ownedFields(key, applied)) {
            for (const [other, theirs] of owners?.get(field) ?? []) {
                if (other !== manager && theirs !== value) {
                    const path = field.startsWith(".") ? field : `.metadata.labels.${field}`;
                    throw new Error(`Server-Side Apply field conflict detected: Apply failed with 1 conflict: conflict with "${other}": ${path}`);
                }
            }
        }
    }

    /** The manager now owns the fields it applied (alone, when forced or on create); a manager's value is its last. */
    private own(key: string, applied: Record<string, any>, manager: string): void {
        const owners = this.labelOwners.get(key) ?? new Map<string, Map<string, string>>();
        const forced = applied.metadata?.annotations?.["pulumi.com/patchForce"] === "true";
        for (const [field, value] of ownedFields(key, applied)) {
            const byManager = forced ? new Map<string, string>() : (owners.get(field) ?? new Map<string, string>());
            for (const [m, v] of byManager) if (v !== value && m !== manager) byManager.delete(m);
            byManager.set(manager, value);
            owners.set(field, byManager);
        }
        this.labelOwners.set(key, owners);
    }

    /** A Patch resource's delete leaves its object; any other's deletes it, and a Namespace what is in it. */
    private deleteFromCluster(entry: StateEntry): void {
        if (entry.retainOnDelete || !entry.type.startsWith("kubernetes:") || entry.type.endsWith("Patch")) return;
        const key = clusterKey(entry.type, entry.created.outputs);
        this.cluster.delete(key);
        this.labelOwners.delete(key);
        if (entry.type === "kubernetes:core/v1:Namespace") {
            const ns = entry.created.outputs.metadata?.name;
            for (const k of [...this.cluster.keys()]) if (k.split("/").slice(-2, -1)[0] === ns && !k.startsWith("core/v1:Namespace/")) this.cluster.delete(k);
        }
    }

    byType(type: string): RecordedResource[] {
        return this.resources.filter((r) => r.type === type);
    }

    /** The one resource of a type (whose name ends in `nameSuffix`); the error lists what there is. */
    one(type: string, nameSuffix?: string): RecordedResource {
        const ofType = this.byType(type);
        const matches = nameSuffix === undefined ? ofType : ofType.filter((r) => r.name.endsWith(nameSuffix));
        if (matches.length === 1) return matches[0];
        const what = `${type}${nameSuffix === undefined ? "" : ` with name ending in "${nameSuffix}"`}`;
        const listed = (ofType.length > 0 ? ofType : this.resources).map((r) => `  - ${r.type}  ${r.name}`);
        throw new Error(
            `FakeCloud.one: expected exactly one ${what}, found ${matches.length}.\n` +
                (ofType.length > 0 ? `Resources of type ${type}:\n` : `No resource of that type; all ${this.resources.length} registered in this run:\n`) +
                listed.join("\n"),
        );
    }

    /**
     * `pulumi up --replace <urn>`: the next run creates the resource anew (a new key, password or
     * certificate) whatever its inputs, so everything built on its outputs changes too.
     */
    replaceOnNextRun(urn: string): void {
        if (!this.state.delete(urn)) throw new Error(`FakeCloud.replaceOnNextRun: the state holds no ${urn}`);
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
        throw new Error(`FakeCloud: invoke "${args.token}" is not emulated (the program makes none)`);
    }

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
        const reg = this.registering[this.registering.length - 1];
        if (reg === undefined) throw new Error("FakeCloud: a resource was registered outside runProgram");
        const urn = makeUrn(reg.parent, args.type, args.name);
        const raw: Record<string, any> = args.inputs ?? {};
        const secretInputs = Object.keys(raw).filter((k) => containsSecret(raw[k]));
        try {
            // The provider sees secrets unwrapped and unknowns (preview only) as the sentinel.
            const { id, outputs } = this.apply(args.type, args.name, urn, unwrapSecrets(raw, UNKNOWN), !!args.custom, reg);
            // Engine semantics: an output is secret if listed in additionalSecretOutputs or if the same-named input was.
            const secret = new Set([...reg.additionalSecretOutputs, ...secretInputs]);
            const state: Record<string, any> = {};
            for (const [k, v] of Object.entries(outputs)) state[k] = secret.has(k) && !containsUnknown(v) ? wrapSecret(v) : v;
            const provider = args.provider ?? "";
            this.resources.push({
                type: args.type,
                name: args.name,
                urn,
                inputs: unwrapSecrets(raw),
                outputs: knownOnly(outputs),
                secretInputs,
                id,
                provider,
                retainOnDelete: reg.retainOnDelete,
                aliases: reg.aliases,
            });
            return { id, state };
        } catch (e) {
            const err = e instanceof Error ? e : new Error(String(e));
            err.message = `FakeCloud: ${args.type} "${args.name}": ${err.message}`;
            this.errors.push(err);
            throw err;
        }
    }

    /** Unchanged: what the state holds. Otherwise create it, or in preview plan it (computed outputs absent, so unknown). */
    private apply(type: string, name: string, urn: string, given: Record<string, any>, custom: boolean, reg: Registration): Created {
        // Engine: the state at the URN, else at the first alias that has some (the resource moved).
        let prevUrn: string | undefined = this.state.has(urn) ? urn : reg.aliases.find((a) => this.state.has(a) && !this.seen.has(a));
        const prev = prevUrn === undefined ? undefined : this.state.get(prevUrn);
        if (prevUrn === urn) prevUrn = undefined;
        this.seen.add(urn);
        if (prevUrn !== undefined) this.seen.add(prevUrn);
        // Engine: an ignored path takes the value the state holds (when the resource exists and has one).
        const inputs = prev === undefined ? given : withIgnoredChanges(given, prev.inputs, reg.ignoreChanges);
        const isKubernetes = type.startsWith("kubernetes:");
        if (isKubernetes && !type.endsWith("Patch")) autoname(inputs, name, prev);
        const inputsJSON = canonicalJSON(inputs);
        const preview = !!this.opts.preview;
        if (prev !== undefined && prev.type === type && prev.inputsJSON === inputsJSON && !(EMULATED[type]?.renews && inRenewalWindow(prev.created.outputs))) {
            this.steps.push({ urn, type, op: "same", ...(prevUrn ? { from: prevUrn } : {}) });
            if (prevUrn !== undefined && !preview) {
                this.state.delete(prevUrn);
                this.state.set(urn, prev);
            }
            return structuredClone(prev.created);
        }
        const op: Step["op"] = prev === undefined ? "create" : isKubernetes && !kubernetesReplaces(prev.created.outputs, inputs) ? "update" : "replace";
        this.steps.push({ urn, type, op, ...(prevUrn ? { from: prevUrn } : {}) });
        let created: Created;
        if (EMULATED[type] !== undefined) {
            const unknown = Object.keys(inputs).filter((k) => inputs[k] !== undefined && !EMULATED[type].inputs.includes(k));
            if (unknown.length > 0) throw new Error(`input ${unknown.join(", ")} is not emulated (the fake knows ${EMULATED[type].inputs.join(", ")})`);
            created = preview ? { id: "", outputs: { ...inputs } } : EMULATED[type].create(inputs);
        } else if (isKubernetes) {
            const manager = inputs.metadata?.annotations?.["pulumi.com/patchFieldManager"] ?? this.managers.get(prevUrn ?? urn) ?? randomManager();
            const outputs = this.kubernetesApply(type, name, inputs, preview, op, prev, manager);
            if (!preview) {
                if (prevUrn !== undefined) this.managers.delete(prevUrn);
                this.managers.set(urn, manager);
            }
            created = { id: kubernetesId(outputs), outputs };
        } else if (type.startsWith("pulumi:providers:")) {
            // The engine gives a provider a UUID; derived from the URN here so reruns agree.
            created = { id: crypto.createHash("sha256").update(urn).digest("hex").slice(0, 32), outputs: { ...inputs } };
        } else if (!custom) {
            created = { id: "", outputs: { ...inputs } }; // a component or the stack
        } else {
            throw new Error("resource type is not emulated");
        }
        // A preview leaves state alone, and ids are unknown until a resource exists.
        if (preview) return { ...created, id: "" };
        if (prevUrn !== undefined) this.state.delete(prevUrn);
        this.state.set(urn, { inputs: structuredClone(inputs), inputsJSON, created: structuredClone(created), type, retainOnDelete: reg.retainOnDelete });
        return created;
    }

    /**
     * The API server's side of a create, update or replace: AlreadyExists for a client-side create of an
     * object that exists; a Patch resource's server-side apply merged into what exists. Returns the live object.
     */
    private kubernetesApply(
        type: string,
        name: string,
        inputs: Record<string, any>,
        preview: boolean,
        op: Step["op"],
        prev: StateEntry | undefined,
        manager: string,
    ): Record<string, any> {
        const out: Record<string, any> = structuredClone(inputs);
        if (type === "kubernetes:core/v1:Service") {
            out.spec = { ...out.spec };
            out.spec.clusterIP ??= prev?.created.outputs.spec?.clusterIP ?? (preview ? UNKNOWN : (this.opts.clusterIP?.(name) ?? "10.96.0.10"));
        }
        if (!isPlainObject(out.metadata) || typeof out.metadata.name !== "string") return out; // unknown in preview
        const key = clusterKey(type, out);
        const prevKey = prev && prev.type.startsWith("kubernetes:") ? clusterKey(prev.type, prev.created.outputs) : undefined;
        const existing = this.cluster.get(key);
        let live: Record<string, any>;
        if (type.endsWith("Patch")) {
            if (existing !== undefined) this.refuseConflicts(key, out, manager);
            live = existing === undefined ? out : serverSideApply(existing, out, key);
        } else {
            // pulumi-kubernetes >= 4.29.0: a create is client-side; the object must not exist (a replace
            // under the same name deletes the old one first: the provider's delete-before-replace).
            const sameObject = op !== "create" && prevKey === key;
            if (existing !== undefined && !sameObject) {
                throw new Error(`${kindPlural(type)} "${out.metadata.name}" already exists`);
            }
            live = out;
        }
        if (!preview) {
            if (op === "replace" && prevKey !== undefined && prevKey !== key && prev && !prev.retainOnDelete && !prev.type.endsWith("Patch"))
                this.deleteFromCluster(prev);
            this.cluster.set(key, structuredClone(live));
            this.own(key, out, manager);
        }
        return structuredClone(live);
    }
}

// ---------------------------------------------------------------------------------------------------------
// runProgram
// ---------------------------------------------------------------------------------------------------------

/**
 * Runs the program at `entry` (an absolute path; a Pulumi.yaml beside it names the project and gives
 * config defaults, else the project is "project") as one `pulumi up` of stack "test" against `cloud`. Resolves with the stack's outputs;
 * rejects with the program's error, or with the providers' refusals.
 */
export async function runProgram(
    cloud: FakeCloud,
    opts: { config: Record<string, string>; secretKeys?: string[]; entry: string },
): Promise<{ outputs: Record<string, unknown>; secretOutputs: Set<string> }> {
    const project = readProject(opts.entry);
    refusePlainSecrets(project, opts.config, opts.secretKeys ?? []);
    await cloud.beginRun(project.name, "test");
    pulumi.runtime.setAllConfig({ ...project.defaults, ...opts.config }, opts.secretKeys ?? []);

    // Registration failures are reported by rejecting (below), so the runtime's unhandled rejections for
    // them are swallowed here instead of failing the whole test run.
    return withRefusalsSuppressed(cloud, async () => {
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
        // Wait on the exports from the start, so a refused resource's rejections are handled when they happen.
        const exported = Promise.all(
            Object.keys(mod).map(async (key) => {
                const out = pulumi.output(mod[key] as any) as any;
                const [value, isSecret] = await Promise.all([out.promise(/*withUnknowns*/ true), out.isSecret]);
                outputs[key] = stripUnknowns(value);
                if (isSecret) secretOutputs.add(key);
            }),
        );
        exported.catch(() => undefined);
        await settle(cloud);
        const failed = new Promise<never>((_, reject) => {
            // Outputs of a resource whose dependency failed never resolve (the real runtime exits instead).
            const check = () => (cloud.errors.length > 0 ? reject(registrationError(cloud)) : setTimeout(check, 20).unref());
            check();
        });
        failed.catch(() => undefined);
        await Promise.race([failed, exported]);
        await settle(cloud);
        if (cloud.errors.length > 0) throw registrationError(cloud);
        cloud.finishRun();
        return { outputs, secretOutputs };
    });
}

/** Loads the program afresh, so every run registers its resources again. */
async function loadProgram(entry: string): Promise<Record<string, unknown>> {
    if (process.env.VITEST) {
        // Forget the program's modules (not @pulumi/*, which load from node_modules), then import.
        const { vi } = await import("vitest");
        vi.resetModules();
        return import(entry);
    }
    // Outside vitest (the benchmark, run by tsx as CommonJS): forget every module not from node_modules.
    const nodeModules = `${path.sep}node_modules${path.sep}`;
    for (const id of Object.keys(require.cache)) if (!id.includes(nodeModules)) delete require.cache[id];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(entry) as Record<string, unknown>;
}

/** The project's name and its config defaults (`config: {key: {default: v}}`), as the CLI applies them. */
function readProject(entry: string): { name: string; defaults: Record<string, string>; secret: Set<string> } {
    const file = path.join(path.dirname(entry), "Pulumi.yaml");
    if (!fs.existsSync(file)) return { name: "project", defaults: {}, secret: new Set() };
    const doc = YAML.parse(fs.readFileSync(file, "utf8")) as { name: string; config?: Record<string, { default?: unknown; secret?: boolean }> };
    const defaults: Record<string, string> = {};
    const secret = new Set<string>();
    for (const [key, spec] of Object.entries(doc.config ?? {})) {
        const fullKey = key.includes(":") ? key : `${doc.name}:${key}`;
        if (spec?.secret) secret.add(fullKey);
        if (spec?.default === undefined) continue;
        defaults[fullKey] = typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default);
    }
    return { name: doc.name, defaults, secret };
}

/** As the Pulumi CLI does before it starts a program (ValidateStackConfigAndApplyProjectConfig). */
function refusePlainSecrets(project: { secret: Set<string> }, config: Record<string, string>, secretKeys: string[]): void {
    for (const fullKey of Object.keys(config)) {
        if (project.secret.has(fullKey) && !secretKeys.includes(fullKey)) {
            throw new Error(`validating stack config: Stack 'test' with configuration key '${fullKey.split(":")[1]}' must be encrypted as it's secret`);
        }
    }
}

function registrationError(cloud: FakeCloud): Error {
    const msg = cloud.errors.map((e) => e.message).join("\n");
    return cloud.errors.length === 1 ? cloud.errors[0] : new AggregateError(cloud.errors, msg);
}

/**
 * Runs `fn` with the providers' refusals swallowed (they are reported by rejecting). Any other unhandled
 * rejection is the program's own error (an `apply` that throws inside a resource's inputs): the Pulumi
 * runtime fails `pulumi up` with it, and so does this.
 */
async function withRefusalsSuppressed<T>(cloud: FakeCloud, fn: () => Promise<T>): Promise<T> {
    const saved = process.listeners("unhandledRejection");
    const programErrors: unknown[] = [];
    const ours = (reason: unknown) => {
        const msg = reason instanceof Error ? reason.message : String(reason);
        if (cloud.errors.some((e) => msg.includes(e.message))) return;
        programErrors.push(reason);
    };
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", ours);
    let res: T;
    try {
        res = await fn();
        await settle(cloud);
    } finally {
        // Unhandled-rejection detection runs after the microtask queue drains; give it a turn.
        await new Promise((r) => setTimeout(r, 0));
        process.removeListener("unhandledRejection", ours);
        for (const l of saved) process.on("unhandledRejection", l);
    }
    if (programErrors.length > 0) throw programErrors[0];
    return res;
}

/** `done`, or the first refusal a registration gets, whichever comes first. */
async function untilRefusalOr(cloud: FakeCloud, done: Promise<void>): Promise<void> {
    let settled = false;
    const finished = done.then(() => {
        settled = true;
    });
    while (!settled && cloud.errors.length === 0) await Promise.race([finished, new Promise((r) => setTimeout(r, 20).unref())]);
}

/** Waits until the Pulumi runtime has no outstanding RPCs and the set of registered resources is stable. */
async function settle(cloud: FakeCloud, timeoutMs = 30_000): Promise<void> {
    const waitForRPCs: (() => Promise<void>) | undefined = (pulumi.runtime as any).waitForRPCs;
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let stable = 0;
    while (stable < 3 && Date.now() < deadline) {
        // Once a registration is refused, resources that depend on it wait forever (the real runtime
        // exits instead), and so would waitForRPCs: it is given up as soon as there is a refusal.
        if (waitForRPCs) await untilRefusalOr(cloud, waitForRPCs());
        await new Promise((r) => setImmediate(r));
        const n = cloud.resources.length + cloud.errors.length;
        if (n === last) stable++;
        else {
            stable = 0;
            last = n;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Value helpers (secrets, unknowns, canonical JSON)
// ---------------------------------------------------------------------------------------------------------

const isSecretWrapper = (v: any): boolean => v !== null && typeof v === "object" && v[SIG_KEY] === SECRET_SIG;
const wrapSecret = (v: any): any => (isSecretWrapper(v) ? v : { [SIG_KEY]: SECRET_SIG, value: v });
const isPlainObject = (v: any): boolean => v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype;

function containsSecret(v: any): boolean {
    if (isSecretWrapper(v)) return true;
    if (Array.isArray(v)) return v.some(containsSecret);
    return isPlainObject(v) && Object.values(v).some(containsSecret);
}

function containsUnknown(v: any): boolean {
    if (v === UNKNOWN || pulumi.isUnknown(v)) return true;
    if (Array.isArray(v)) return v.some(containsUnknown);
    return v !== null && typeof v === "object" && Object.values(v).some(containsUnknown);
}

/** Deep-unwraps secret wrappers; unknowns (preview) become `unknownAs`. */
function unwrapSecrets(v: any, unknownAs: any = undefined): any {
    if (pulumi.isUnknown(v) || v === UNKNOWN) return unknownAs;
    if (isSecretWrapper(v)) return unwrapSecrets(v.value, unknownAs);
    if (Array.isArray(v)) return v.map((x) => unwrapSecrets(x, unknownAs));
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x, unknownAs)]));
    return v;
}

/** Outputs with unknowns dropped, as a test should see them. */
function knownOnly(o: Record<string, any>): Record<string, any> {
    return Object.fromEntries(Object.entries(unwrapSecrets(o)).filter(([, v]) => v !== undefined));
}

function stripUnknowns(v: any): any {
    if (pulumi.isUnknown(v)) return undefined;
    if (Array.isArray(v)) return v.map(stripUnknowns);
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, stripUnknowns(x)]));
    return v;
}

/** `inputs` with each dotted `ignoreChanges` path set to its value in `old` (removed where `old` has none). */
export function withIgnoredChanges(inputs: Record<string, any>, old: Record<string, any>, paths: readonly string[]): Record<string, any> {
    const out = structuredClone(inputs);
    for (const p of paths) {
        if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(p)) throw new Error(`ignoreChanges path ${JSON.stringify(p)} is not emulated (dotted names only)`);
        const keys = p.split(".");
        let from: any = old;
        for (const k of keys) from = isPlainObject(from) ? from[k] : undefined;
        let to: any = out;
        for (const k of keys.slice(0, -1)) {
            if (!isPlainObject(to[k])) {
                if (from === undefined) break;
                to[k] = {};
            }
            to = to[k];
        }
        if (!isPlainObject(to)) continue;
        const last = keys[keys.length - 1];
        if (from === undefined) delete to[last];
        else to[last] = structuredClone(from);
    }
    return out;
}

function canonicalJSON(v: any): string {
    const norm = (x: any): any => {
        if (Array.isArray(x)) return x.map(norm);
        if (x === null || typeof x !== "object") return x;
        return Object.fromEntries(
            Object.keys(x)
                .sort()
                .filter((k) => x[k] !== undefined)
                .map((k) => [k, norm(x[k])]),
        );
    };
    return JSON.stringify(norm(v));
}

/** The engine's URN: the parent's qualified type chain (the root stack left out), `$`, the type, `::`, the name. */
export function makeUrn(parent: string, type: string, name: string): string {
    const parentType = parent ? parent.split("::")[2] : "";
    const qualified = parentType && parentType !== "pulumi:pulumi:Stack" ? `${parentType}$${type}` : type;
    return `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${qualified}::${name}`;
}

/** The engine's alias resolution: a URN as given, or a spec whose unset parts are the resource's own. */
function resolveAliases(req: any): string[] {
    const urns: string[] = [...(req.getAliasurnsList?.() ?? [])];
    for (const alias of req.getAliasesList?.() ?? []) {
        if (alias.getUrn()) {
            urns.push(alias.getUrn());
            continue;
        }
        const spec = alias.getSpec();
        const parent = spec.getNoparent() ? "" : spec.getParenturn() || req.getParent();
        const urn = makeUrn(parent, spec.getType() || req.getType(), spec.getName() || req.getName());
        const [, , ...rest] = urn.split("::");
        urns.push(`urn:pulumi:${spec.getStack() || pulumi.getStack()}::${spec.getProject() || pulumi.getProject()}::${rest.join("::")}`);
    }
    return urns;
}

/** The annotation the provider's Check puts on an object it names (pulumi-kubernetes provider/pkg/metadata). */
const AUTONAMED = "pulumi.com/autonamed";

/**
 * The provider's Check on an object the program gives no name (pulumi-kubernetes provider/pkg/provider/
 * provider.go `Check`, provider/pkg/metadata/naming.go): with old inputs, `AdoptOldAutonameIfUnnamed` keeps
 * the old name only when those inputs carry `pulumi.com/autonamed: "true"` (`IsAutonamed(oldObj)`), else
 * (and with no state) `AssignNameIfAutonamable` draws `<name>-<random>`; either way the inputs get the
 * annotation. So a Patch's state (named by the program, no annotation) moved to an unnamed resource by an
 * alias gets a NEW name: a replace.
 */
function autoname(inputs: Record<string, any>, name: string, prev: StateEntry | undefined): void {
    if (isPlainObject(inputs.metadata) && inputs.metadata.name !== undefined) return;
    const old = prev?.inputs.metadata;
    const adopted = old?.annotations?.[AUTONAMED] === "true" ? (old.name as string) : undefined;
    // The provider draws at random; derived here from the name (and the name it replaces) so reruns agree.
    const seed = old?.name === undefined ? name : `${name}/${old.name}`;
    const generated = adopted ?? `${name}-${crypto.createHash("sha256").update(seed).digest("hex").slice(0, 8)}`;
    const metadata = isPlainObject(inputs.metadata) ? inputs.metadata : {};
    inputs.metadata = { ...metadata, name: generated, annotations: { ...metadata.annotations, [AUTONAMED]: "true" } };
}

/** Whether the provider replaces (rather than updates) an object: a new name or namespace, or a claim's immutable spec. */
function kubernetesReplaces(old: Record<string, any>, inputs: Record<string, any>): boolean {
    const md = inputs.metadata ?? {};
    if (md.name !== old.metadata?.name || (md.namespace ?? undefined) !== (old.metadata?.namespace ?? undefined)) return true;
    const claimFields = ["storageClassName", "accessModes", "volumeName"];
    return (
        old.kind === "PersistentVolumeClaim" &&
        claimFields.some((f) => inputs.spec?.[f] !== undefined && canonicalJSON(inputs.spec[f]) !== canonicalJSON(old.spec?.[f]))
    );
}

/** The provider's field manager when no `pulumi.com/patchFieldManager` names one: `pulumi-kubernetes-` and a random suffix (pulumi-kubernetes#2271). */
function randomManager(): string {
    return `pulumi-kubernetes-${crypto.randomBytes(4).toString("hex")}`;
}

/** The fields whose owners the fake tracks: labels by name, and a claim's storage request by its path. */
function ownedFields(key: string, applied: Record<string, any>): Array<[string, string]> {
    const fields = Object.entries<string>(applied.metadata?.labels ?? {});
    const storage = applied.spec?.resources?.requests?.storage;
    if (key.startsWith("core/v1:PersistentVolumeClaim/") && typeof storage === "string") fields.push([".spec.resources.requests.storage", storage]);
    return fields;
}

/** `<group/version:Kind>/<namespace>/<name>`: a Patch type names the kind it patches. */
function clusterKey(type: string, o: Record<string, any>): string {
    const kind = type.replace(/^kubernetes:/, "").replace(/Patch$/, "");
    return `${kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
}

/** The API server's resource name in its messages (`namespaces "registry" already exists`). */
function kindPlural(type: string): string {
    const kind = type
        .split(":")
        .pop()!
        .replace(/Patch$/, "")
        .toLowerCase();
    return kind.endsWith("s") ? `${kind}es` : kind.endsWith("y") ? `${kind.slice(0, -1)}ies` : `${kind}s`;
}

/**
 * A server-side apply onto an existing object: labels and annotations merged, other fields set; a
 * claim's spec is immutable (but for its storage request), so a different value is refused.
 */
function serverSideApply(live: Record<string, any>, applied: Record<string, any>, key: string): Record<string, any> {
    const out = structuredClone(live);
    const md = applied.metadata ?? {};
    out.metadata = { ...out.metadata, labels: { ...out.metadata?.labels, ...md.labels }, annotations: { ...out.metadata?.annotations, ...md.annotations } };
    if (Object.keys(out.metadata.labels).length === 0) delete out.metadata.labels;
    if (Object.keys(out.metadata.annotations).length === 0) delete out.metadata.annotations;
    if (key.startsWith("core/v1:PersistentVolumeClaim/")) {
        for (const f of ["storageClassName", "accessModes", "volumeName"]) {
            const want = applied.spec?.[f];
            if (want !== undefined && live.spec?.[f] !== undefined && canonicalJSON(want) !== canonicalJSON(live.spec[f])) {
                throw new Error(
                    `PersistentVolumeClaim "${live.metadata.name}" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests`,
                );
            }
        }
        out.spec = { ...live.spec, resources: applied.spec?.resources ?? live.spec?.resources };
        return out;
    }
    for (const [k, v] of Object.entries(applied)) if (k !== "metadata") out[k] = structuredClone(v);
    return out;
}

function kubernetesId(o: Record<string, any>): string {
    const md = o.metadata ?? {};
    return md.namespace ? `${md.namespace}/${md.name}` : md.name;
}

function requireInt(v: any, name: string, min: number): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new Error(`"${name}" must be an integer of at least ${min}, got ${JSON.stringify(v)}`);
    return v;
}

// ---------------------------------------------------------------------------------------------------------
// The resources: tls and random
// ---------------------------------------------------------------------------------------------------------

const EMULATED: Record<string, Emulated> = {
    "tls:index/privateKey:PrivateKey": { inputs: ["algorithm", "ecdsaCurve", "rsaBits"], create: createPrivateKey },
    "tls:index/selfSignedCert:SelfSignedCert": {
        inputs: ["privateKeyPem", "subject", "isCaCertificate", "validityPeriodHours", "earlyRenewalHours", "allowedUses", "setSubjectKeyId"],
        create: createSelfSignedCert,
        renews: true,
    },
    "tls:index/certRequest:CertRequest": { inputs: ["privateKeyPem", "subject", "dnsNames", "ipAddresses"], create: createCertRequest },
    "tls:index/locallySignedCert:LocallySignedCert": {
        inputs: ["certRequestPem", "caPrivateKeyPem", "caCertPem", "validityPeriodHours", "earlyRenewalHours", "allowedUses"],
        create: createLocallySignedCert,
        renews: true,
    },
    "random:index/randomPassword:RandomPassword": { inputs: ["length", "special"], create: createRandomPassword },
    "random:index/randomBytes:RandomBytes": { inputs: ["length"], create: createRandomBytes },
};

function inRenewalWindow(outputs: Record<string, any>): boolean {
    const end = Date.parse(outputs.validityEndTime);
    return Date.now() >= end - Number(outputs.earlyRenewalHours ?? 0) * 3600_000;
}

/** terraform-provider-random: the provider's character classes; upper, lower and numeric are always on here. */
function createRandomPassword(inputs: Record<string, any>): Created {
    const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + (inputs.special === false ? "" : "!@#$%&*()-_=+[]{}<>:?");
    const result = Array.from({ length: requireInt(inputs.length, "length", 1) }, () => chars[crypto.randomInt(chars.length)]).join("");
    return { id: "none", outputs: { ...inputs, result } };
}

function createRandomBytes(inputs: Record<string, any>): Created {
    const bytes = crypto.randomBytes(requireInt(inputs.length, "length", 1));
    return { id: "none", outputs: { ...inputs, base64: bytes.toString("base64") } };
}

function createPrivateKey(inputs: Record<string, any>): Created {
    let privateKeyPem: string;
    if (inputs.algorithm === "ECDSA") {
        // The provider's default curve is P224, which Go's TLS stack refuses: the program must ask for P256.
        if (inputs.ecdsaCurve !== "P256") throw new Error(`ecdsaCurve ${JSON.stringify(inputs.ecdsaCurve ?? "P224 (the provider's default)")} is not emulated`);
        const { privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
        privateKeyPem = privateKey.export({ type: "sec1", format: "pem" }) as string;
    } else if (inputs.algorithm === "RSA") {
        const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: requireInt(inputs.rsaBits ?? 2048, "rsaBits", 1024) });
        privateKeyPem = privateKey.export({ type: "pkcs1", format: "pem" }) as string;
    } else {
        throw new Error(`algorithm ${JSON.stringify(inputs.algorithm)} is not emulated (ECDSA and RSA are)`);
    }
    return { id: crypto.createHash("sha1").update(privateKeyPem).digest("hex"), outputs: { ...inputs, privateKeyPem } };
}

function createSelfSignedCert(inputs: Record<string, any>): Created {
    const key = crypto.createPrivateKey(inputs.privateKeyPem);
    const pub = crypto.createPublicKey(key);
    const subject = encodeName(inputs.subject);
    const isCA = !!inputs.isCaCertificate;
    // Go: the parent is the template itself, so issuer == subject.
    return certificate(inputs, {
        subject,
        issuer: subject,
        sans: { dns: [], ips: [] },
        isCA,
        subjectKeyId: isCA || inputs.setSubjectKeyId ? subjectKeyId(spkiOf(pub)) : undefined,
        publicKey: pub,
        signer: key,
    });
}

function createCertRequest(inputs: Record<string, any>): Created {
    const key = crypto.createPrivateKey(inputs.privateKeyPem);
    const sans: SANs = { dns: (inputs.dnsNames ?? []).map(String), ips: (inputs.ipAddresses ?? []).map(ipToBytes) };
    // Go x509.CreateCertificateRequest: an extensionRequest attribute only when there are SANs.
    const attrs = sans.dns.length + sans.ips.length > 0 ? [seq(derOid(OID.extensionRequest), set(seq(extension(OID.san, false, sanValue(sans)))))] : [];
    const info = seq(derUInt(0n), encodeName(inputs.subject), spkiOf(crypto.createPublicKey(key)), tlv(0xa0, ...attrs));
    const certRequestPem = pemEncode("CERTIFICATE REQUEST", signDer(info, key));
    return { id: crypto.createHash("sha1").update(certRequestPem).digest("hex"), outputs: { ...inputs, certRequestPem } };
}

function createLocallySignedCert(inputs: Record<string, any>): Created {
    const csr = parseCSR(inputs.certRequestPem);
    const caKey = crypto.createPrivateKey(inputs.caPrivateKeyPem);
    const ca = parseCert(inputs.caCertPem);
    // Go x509.CreateCertificate refuses a signer that does not match the parent certificate.
    if (!new crypto.X509Certificate(inputs.caCertPem).checkPrivateKey(caKey)) {
        throw new Error("Failed to create certificate: x509: provided PrivateKey doesn't match parent's PublicKey");
    }
    // Go: the AKI is the parent's SKI whenever issuer != subject.
    return certificate(inputs, {
        subject: csr.subject,
        issuer: ca.subject,
        sans: csr.sans,
        isCA: false,
        authorityKeyId: ca.subjectKeyId,
        publicKey: csr.publicKey,
        signer: caKey,
    });
}

// ---------------------------------------------------------------------------------------------------------
// X.509 as Go's crypto/x509 writes it, driven by terraform-provider-tls
// ---------------------------------------------------------------------------------------------------------

const OID = {
    organization: "2.5.4.10",
    commonName: "2.5.4.3",
    keyUsage: "2.5.29.15",
    extKeyUsage: "2.5.29.37",
    basicConstraints: "2.5.29.19",
    subjectKeyId: "2.5.29.14",
    authorityKeyId: "2.5.29.35",
    san: "2.5.29.17",
    extensionRequest: "1.2.840.113549.1.9.14",
    sha256WithRSA: "1.2.840.113549.1.1.11",
    ecdsaWithSHA256: "1.2.840.10045.4.3.2",
};

/** The `allowed_uses` the program asks for: a KeyUsage bit (Go's numbering) or an ExtKeyUsage OID. */
const ALLOWED_USES: Record<string, { bit: number } | { oid: string }> = {
    digital_signature: { bit: 0 },
    key_encipherment: { bit: 2 },
    cert_signing: { bit: 5 },
    crl_signing: { bit: 6 },
    server_auth: { oid: "1.3.6.1.5.5.7.3.1" },
};

interface SANs {
    dns: string[];
    ips: Buffer[];
}

interface CertTemplate {
    subject: Buffer;
    issuer: Buffer;
    sans: SANs;
    isCA: boolean;
    subjectKeyId?: Buffer;
    authorityKeyId?: Buffer;
    publicKey: crypto.KeyObject;
    signer: crypto.KeyObject;
}

/** Go x509.CreateCertificate as the provider's createCertificate() drives it. */
function certificate(inputs: Record<string, any>, t: CertTemplate): Created {
    const validityHours = requireInt(inputs.validityPeriodHours, "validityPeriodHours", 0);
    const serial = BigInt("0x" + crypto.randomBytes(16).toString("hex"));
    const notBefore = new Date();
    const notAfter = new Date(notBefore.getTime() + validityHours * 3600_000);
    const { keyUsage, extKeyUsage } = parseAllowedUses(inputs.allowedUses);
    const exts: Buffer[] = [];
    if (keyUsage.length > 0) exts.push(extension(OID.keyUsage, true, keyUsageValue(keyUsage)));
    if (extKeyUsage.length > 0) exts.push(extension(OID.extKeyUsage, false, seq(...extKeyUsage.map(derOid))));
    exts.push(extension(OID.basicConstraints, true, t.isCA ? seq(derBool(true)) : seq()));
    if (t.subjectKeyId) exts.push(extension(OID.subjectKeyId, false, derOctet(t.subjectKeyId)));
    if (t.authorityKeyId) exts.push(extension(OID.authorityKeyId, false, seq(tlv(0x80, t.authorityKeyId))));
    if (t.sans.dns.length + t.sans.ips.length > 0) exts.push(extension(OID.san, false, sanValue(t.sans)));
    const tbs = seq(
        tlv(0xa0, derUInt(2n)),
        derUInt(serial),
        signatureAlgorithm(t.signer),
        t.issuer,
        seq(derTime(notBefore), derTime(notAfter)),
        t.subject,
        spkiOf(t.publicKey),
        tlv(0xa3, seq(...exts)),
    );
    return {
        id: serial.toString(10),
        // The provider's validity_end_time: RFC 3339 as Go formats it, whole seconds, as the certificate holds it.
        outputs: { ...inputs, certPem: pemEncode("CERTIFICATE", signDer(tbs, t.signer)), validityEndTime: notAfter.toISOString().replace(/\.\d+Z$/, "Z") },
    };
}

function parseAllowedUses(uses: unknown): { keyUsage: number[]; extKeyUsage: string[] } {
    if (!Array.isArray(uses)) throw new Error(`"allowedUses" must be a list of strings, got ${JSON.stringify(uses)}`);
    const keyUsage: number[] = [];
    const extKeyUsage: string[] = [];
    uses.forEach((u, i) => {
        const use = ALLOWED_USES[u];
        if (use === undefined) throw new Error(`allowed_uses[${i}] "${u}" is not emulated (the fake knows ${Object.keys(ALLOWED_USES).join(", ")})`);
        if ("bit" in use) keyUsage.push(use.bit);
        else extKeyUsage.push(use.oid);
    });
    return { keyUsage, extKeyUsage };
}

/** A KeyUsage BIT STRING with its trailing zero bits dropped, as DER wants (every bit used is in the first byte). */
function keyUsageValue(bits: number[]): Buffer {
    const byte = bits.reduce((b, bit) => b | (0x80 >> bit), 0);
    return derBitString(Buffer.from([byte]), 7 - Math.max(...bits));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
    return critical ? seq(derOid(oid), derBool(true), derOctet(value)) : seq(derOid(oid), derOctet(value));
}

function sanValue(s: SANs): Buffer {
    return seq(...s.dns.map((d) => tlv(0x82, Buffer.from(d, "ascii"))), ...s.ips.map((ip) => tlv(0x87, ip)));
}

/** pkix.Name.ToRDNSequence for the subject fields the program sets (organization, then common name). */
function encodeName(subject: Record<string, any> | undefined): Buffer {
    const unknown = Object.keys(subject ?? {}).filter((k) => subject?.[k] !== undefined && k !== "organization" && k !== "commonName");
    if (unknown.length > 0) throw new Error(`subject ${unknown.join(", ")} is not emulated`);
    const rdn = (oid: string, v: unknown) => (v === undefined ? [] : [set(seq(derOid(oid), derString(String(v))))]);
    return seq(...rdn(OID.organization, subject?.organization), ...rdn(OID.commonName, subject?.commonName));
}

function ipToBytes(ip: string): Buffer {
    if (net.isIPv4(ip)) return Buffer.from(ip.split(".").map(Number));
    if (!net.isIPv6(ip)) throw new Error(`invalid IP address "${ip}"`);
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
    const tail = v4 ? [...ipToBytes(v4[1])] : [];
    const [head, rest] = (v4 ? ip.slice(0, -v4[1].length) + "0:0" : ip).split("::");
    const groups = (s: string | undefined) => (s ? s.split(":") : []);
    const missing = 8 - groups(head).length - groups(rest).length;
    const words = rest === undefined ? groups(head) : [...groups(head), ...Array<string>(missing).fill("0"), ...groups(rest)];
    const buf = Buffer.alloc(16);
    words.forEach((w, i) => buf.writeUInt16BE(parseInt(w || "0", 16), i * 2));
    if (tail.length) Buffer.from(tail).copy(buf, 12);
    // Go: an IPv4-mapped address is encoded in 4 bytes (ip.To4()).
    return buf.subarray(0, 10).every((x) => x === 0) && buf[10] === 0xff && buf[11] === 0xff ? buf.subarray(12) : buf;
}

function signatureAlgorithm(k: crypto.KeyObject): Buffer {
    if (k.asymmetricKeyType === "rsa") return seq(derOid(OID.sha256WithRSA), Buffer.from([0x05, 0x00]));
    if (k.asymmetricKeyType === "ec" && k.asymmetricKeyDetails?.namedCurve === "prime256v1") return seq(derOid(OID.ecdsaWithSHA256));
    throw new Error(`signing with a ${k.asymmetricKeyType} ${k.asymmetricKeyDetails?.namedCurve ?? ""} key is not emulated`);
}

function signDer(tbs: Buffer, signer: crypto.KeyObject): Buffer {
    return seq(tbs, signatureAlgorithm(signer), derBitString(crypto.sign("sha256", tbs, signer)));
}

function spkiOf(pub: crypto.KeyObject): Buffer {
    return pub.export({ type: "spki", format: "der" });
}

/** Go's (and the provider's) SKI: SHA-1 of the subjectPublicKey bits (the EC point, or PKCS#1 for RSA). */
function subjectKeyId(spki: Buffer): Buffer {
    const bits = derChildren(parseDer(spki))[1];
    return crypto.createHash("sha1").update(bits.content.subarray(1)).digest();
}

function parseCSR(pem: string): { subject: Buffer; publicKey: crypto.KeyObject; sans: SANs } {
    const [info] = derChildren(parseDer(pemDecode(pem, "CERTIFICATE REQUEST")));
    const [, subject, spki, attrs] = derChildren(info);
    const sans: SANs = { dns: [], ips: [] };
    for (const attr of attrs ? derChildren(attrs) : []) {
        const [oid, values] = derChildren(attr);
        if (!oid.raw.equals(derOid(OID.extensionRequest))) continue;
        for (const ext of derChildren(derChildren(values)[0])) {
            const parts = derChildren(ext);
            if (!parts[0].raw.equals(derOid(OID.san))) continue;
            for (const name of derChildren(parseDer(parts[parts.length - 1].content))) {
                if (name.tag === 0x82) sans.dns.push(name.content.toString("ascii"));
                if (name.tag === 0x87) sans.ips.push(Buffer.from(name.content));
            }
        }
    }
    // Go re-encodes the CSR's parsed subject; for the fields emulated here that gives back the same bytes.
    return { subject: Buffer.from(subject.raw), publicKey: crypto.createPublicKey({ key: spki.raw, format: "der", type: "spki" }), sans };
}

function parseCert(pem: string): { subject: Buffer; subjectKeyId?: Buffer } {
    const [tbs] = derChildren(parseDer(pemDecode(pem, "CERTIFICATE")));
    // [0] version, serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo, [3] extensions
    const fields = derChildren(tbs);
    const extensions = fields.find((n) => n.tag === 0xa3);
    const ski = (extensions ? derChildren(derChildren(extensions)[0]) : []).map(derChildren).find((parts) => parts[0].raw.equals(derOid(OID.subjectKeyId)));
    return { subject: Buffer.from(fields[5].raw), subjectKeyId: ski ? Buffer.from(parseDer(ski[ski.length - 1].content).content) : undefined };
}

// ---------------------------------------------------------------------------------------------------------
// Minimal DER and PEM
// ---------------------------------------------------------------------------------------------------------

function tlv(tag: number, ...parts: Buffer[]): Buffer {
    const content = Buffer.concat(parts);
    const n = content.length;
    const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
    return Buffer.concat([Buffer.from([tag, ...len]), content]);
}
const seq = (...p: Buffer[]) => tlv(0x30, ...p);
const set = (...p: Buffer[]) => tlv(0x31, ...p);
const derBool = (b: boolean) => tlv(0x01, Buffer.from([b ? 0xff : 0]));
const derOctet = (b: Buffer) => tlv(0x04, b);
const derBitString = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);

function derUInt(n: bigint): Buffer {
    let hex = n.toString(16);
    if (hex.length % 2) hex = "0" + hex;
    const b = Buffer.from(hex, "hex");
    return tlv(0x02, b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function derOid(oid: string): Buffer {
    const [a, b, ...rest] = oid.split(".").map(Number);
    const out = [a * 40 + b];
    for (const p of rest) {
        const base128 = [p & 0x7f];
        for (let v = p >> 7; v > 0; v >>= 7) base128.unshift((v & 0x7f) | 0x80);
        out.push(...base128);
    }
    return tlv(0x06, Buffer.from(out));
}

function derTime(d: Date): Buffer {
    // Go (and RFC 5280): UTCTime for 1950..2049, GeneralizedTime otherwise.
    const s = d.toISOString().replace(/[-:T]|\.\d+/g, "");
    return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(s.slice(2), "ascii")) : tlv(0x18, Buffer.from(s, "ascii"));
}

function derString(s: string): Buffer {
    // Go's asn1 marshalling: PrintableString (allowing '*') when possible, else UTF8String.
    return /^[A-Za-z0-9 '()+,\-./:=?*]*$/.test(s) ? tlv(0x13, Buffer.from(s, "ascii")) : tlv(0x0c, Buffer.from(s, "utf8"));
}

interface DerNode {
    tag: number;
    raw: Buffer;
    content: Buffer;
    end: number;
}

function parseDer(buf: Buffer, off = 0): DerNode {
    let len = buf[off + 1];
    let header = 2;
    if (len & 0x80) {
        const n = len & 0x7f;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
        header += n;
    }
    const end = off + header + len;
    if (end > buf.length) throw new Error("DER: truncated");
    return { tag: buf[off], raw: buf.subarray(off, end), content: buf.subarray(off + header, end), end };
}

function derChildren(node: DerNode): DerNode[] {
    const children: DerNode[] = [];
    for (let off = 0; off < node.content.length; off = children[children.length - 1].end) children.push(parseDer(node.content, off));
    return children;
}

function pemDecode(pem: string, type: string): Buffer {
    const m = new RegExp(`-----BEGIN ${type}-----([\\s\\S]*?)-----END ${type}-----`).exec(pem);
    if (!m) throw new Error(`failed to decode PEM of expected type "${type}"`);
    return Buffer.from(m[1].replace(/\s+/g, ""), "base64");
}

function pemEncode(type: string, der: Buffer): string {
    return `-----BEGIN ${type}-----\n${der
        .toString("base64")
        .match(/.{1,64}/g)!
        .join("\n")}\n-----END ${type}-----\n`;
}
