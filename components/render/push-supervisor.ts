/** The settings file of the hosted registry's push supervisor (components/push-supervisor/push-supervisor.sh). */

/** What the supervisor is told; paths are the pod's. */
export interface PushSupervisorInput {
    /** The read-write registry's config. */
    writeConfig: string;
    /** The read-only registry's config that answers the push port while garbage is collected. */
    readOnlyConfig: string;
    /** The storage volume's mount path, whose fill level is watched; absent for object storage. */
    storage?: string;
    /** `off`, `manual` (SIGUSR1 only) or `HH:MM` (UTC, daily). */
    gcSchedule: string;
    /** Pass `--delete-untagged` to garbage-collect. */
    gcDeleteUntagged: boolean;
    /** Log a warning while the volume is at least this full, in percent; absent for none. */
    fillWarnPercent?: number;
    /** The push port's debug health URL (plain HTTP): a registry started here serves once it answers. */
    healthUrl: string;
    /**
     * A file on the volume every push container holds flock-shared while its writer runs, and
     * exclusive while it collects; absent for none (object storage, no shared filesystem).
     */
    writerLock?: string;
    /** No collection until the container has run this long (a replaced pod's grace period, object storage). Default: 0. */
    gcHoldoffSeconds?: number;
}

/** `KEY=VALUE` lines the script reads as data (never sourced), so no value may hold a line break. */
export function renderPushSupervisorSettings(input: PushSupervisorInput): string {
    const entries: Array<[string, string]> = [
        ["write_config", input.writeConfig],
        ["readonly_config", input.readOnlyConfig],
        ["storage", input.storage ?? "-"],
        ["gc_schedule", input.gcSchedule],
        ["gc_delete_untagged", String(input.gcDeleteUntagged)],
        ["fill_warn_percent", input.fillWarnPercent === undefined ? "-" : String(input.fillWarnPercent)],
        ["health_url", input.healthUrl],
        ["writer_lock", input.writerLock ?? "-"],
        ["gc_holdoff_seconds", String(input.gcHoldoffSeconds ?? 0)],
    ];
    for (const [key, value] of entries)
        if (/[\r\n]/.test(value)) throw new Error(`push supervisor setting ${key} must be one line, got ${JSON.stringify(value)}`);
    return entries.map(([key, value]) => `${key}=${value}\n`).join("");
}
