/**
 * The hosted registry's push container: its supervisor's settings, the configs garbage collection
 * needs, deletes on the push port only, and what the settings accept, through the whole program.
 */
import { describe, expect, test } from "vitest";
import YAML from "yaml";
import { CONFIG_FILES, GC_REFUSAL_WARNING, MOUNTS, PUSH_COMMAND, pushSupervisorScript, WRITER_LOCK_FILE } from "../../../components/registry";
import { renderPushSupervisorSettings } from "../../../components/render/push-supervisor";
import { resolveSettings } from "../../../components/resolve-settings";
import { FakeCloud, runProgram } from "../../support/fake-cloud";
import { ENTRY } from "../../support/stacks";

async function hosted(config: Record<string, string> = {}) {
    const cloud = new FakeCloud();
    await runProgram(cloud, { config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`cluster-registry:${k}`, v])), entry: ENTRY });
    const data = cloud.one("kubernetes:core/v1:ConfigMap", "hosted-config").inputs.data as Record<string, string>;
    const spec = cloud.one("kubernetes:apps/v1:Deployment", "hosted").inputs.spec.template.spec;
    const yaml = (file: string) => YAML.parse(data[file]) as { storage: Record<string, any>; http: { headers: Record<string, string[]> } };
    return { data, spec, yaml };
}

describe("the push container's supervisor", () => {
    test("runs the script shipped in the ConfigMap with busybox sh; by default collects nothing and warns at 80% full", async () => {
        const { data, spec } = await hosted();
        const push = spec.containers.find((c: { name: string }) => c.name === "push");
        expect(push.command).toEqual(["sh", "/etc/registry/config/push-supervisor.sh", "/etc/registry/config/push-supervisor.conf"]);
        expect(push.command).toEqual(PUSH_COMMAND);
        expect(data[CONFIG_FILES.supervisor]).toBe(pushSupervisorScript());
        expect(data[CONFIG_FILES.supervisorSettings]).toBe(
            [
                "write_config=/etc/registry/config/push.yml",
                "readonly_config=/etc/registry/config/push-readonly.yml",
                "storage=/var/lib/registry",
                "gc_schedule=off",
                "gc_delete_untagged=false",
                "fill_warn_percent=80",
                "health_url=http://127.0.0.1:5003/debug/health",
                "writer_lock=/var/lib/registry/push-writers.lock",
                "gc_holdoff_seconds=0",
                "",
            ].join("\n"),
        );
        // Nothing to swap in without collections.
        expect(data[CONFIG_FILES.pushReadOnly]).toBeUndefined();
    });

    test("on the volume every writer locks a file in the volume's root, outside distribution's data, and collections wait for no clock", async () => {
        const { data, spec } = await hosted({ gcSchedule: "03:00" });
        const settings = data[CONFIG_FILES.supervisorSettings];
        expect(settings).toContain(`writer_lock=${MOUNTS.storage}/${WRITER_LOCK_FILE}\n`);
        expect(WRITER_LOCK_FILE).not.toContain("/");
        expect(settings).toContain("gc_holdoff_seconds=0\n");
        // The push container can create it: the volume is mounted writable there.
        const push = spec.containers.find((c: { name: string }) => c.name === "push");
        expect(push.volumeMounts.find((m: { name: string }) => m.name === "storage")).toEqual({ name: "storage", mountPath: MOUNTS.storage });
    });

    test("registryFillWarnPercent 100 turns the warning off", async () => {
        expect((await hosted({ registryFillWarnPercent: "100" })).data[CONFIG_FILES.supervisorSettings]).toContain("fill_warn_percent=-\n");
    });

    test("a settings value with a line break is refused: it would be a second setting", () => {
        const base = { writeConfig: "/a", readOnlyConfig: "/b", gcSchedule: "off", gcDeleteUntagged: false, healthUrl: "http://x" };
        expect(() => renderPushSupervisorSettings({ ...base, gcSchedule: "03:00\ngc_delete_untagged=true" })).toThrow(/gc_schedule must be one line/);
    });
});

describe("garbage collection", () => {
    test("off by default: both containers keep their in-memory blob-descriptor cache", async () => {
        const { yaml } = await hosted();
        expect(yaml(CONFIG_FILES.pull).storage.cache).toEqual({ blobdescriptor: "inmemory" });
        expect(yaml(CONFIG_FILES.push).storage.cache).toEqual({ blobdescriptor: "inmemory" });
    });

    test("on a schedule: no descriptor cache that could answer for swept blobs, and a read-only push config that says why it refuses", async () => {
        const { data, yaml } = await hosted({ gcSchedule: "03:30", gcDeleteUntagged: "true" });
        expect(data[CONFIG_FILES.supervisorSettings]).toContain("gc_schedule=03:30\ngc_delete_untagged=true\n");
        expect(yaml(CONFIG_FILES.pull).storage.cache).toBeUndefined();
        expect(yaml(CONFIG_FILES.push).storage.cache).toBeUndefined();
        const readOnly = yaml(CONFIG_FILES.pushReadOnly);
        expect(readOnly.storage.maintenance).toEqual({ uploadpurging: { enabled: false }, readonly: { enabled: true } });
        expect(readOnly.http.headers.Warning).toEqual([GC_REFUSAL_WARNING]);
        // Same port, listeners and users as the writer: only writes differ.
        const writer = YAML.parse(data[CONFIG_FILES.push]);
        expect({ ...YAML.parse(data[CONFIG_FILES.pushReadOnly]), storage: undefined, http: undefined }).toEqual({
            ...writer,
            storage: undefined,
            http: undefined,
        });
        expect(YAML.parse(data[CONFIG_FILES.pushReadOnly]).http.addr).toBe(writer.http.addr);
        expect(YAML.parse(data[CONFIG_FILES.pushReadOnly]).http.debug).toEqual(writer.http.debug);
    });

    test("manual collections need no clock and get the same configs", async () => {
        const { data, yaml } = await hosted({ gcSchedule: "manual" });
        expect(data[CONFIG_FILES.supervisorSettings]).toContain("gc_schedule=manual\n");
        expect(yaml(CONFIG_FILES.pull).storage.cache).toBeUndefined();
        expect(data[CONFIG_FILES.pushReadOnly]).toBeDefined();
    });

    test.each(["3:00", "24:00", "12:60", "daily", "0 3 * * *", ""])("gcSchedule %j is refused before anything exists, naming the key", (value) => {
        expect(() => resolveSettings({ gcSchedule: value })).toThrow(/gcSchedule.*off, manual, or a time of day HH:MM in UTC/s);
    });
});

describe("deletes", () => {
    test("refused on both ports by default; pushDeletes enables them on the push port only, never on the read-only pull port", async () => {
        const off = await hosted();
        expect(off.yaml(CONFIG_FILES.push).storage.delete).toEqual({ enabled: false });
        const on = await hosted({ pushDeletes: "true" });
        expect(on.yaml(CONFIG_FILES.push).storage.delete).toEqual({ enabled: true });
        expect(on.yaml(CONFIG_FILES.pull).storage.delete).toEqual({ enabled: false });
        expect(on.yaml(CONFIG_FILES.pull).storage.maintenance.readonly).toEqual({ enabled: true });
    });
});
