// tinyproxy (Debian) as a company's egress proxy: its own config on loopback, stopped by PID, and
// names only it resolves (its own /etc/hosts, in a private mount namespace; the machine's is untouched).

import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { freePort, ProcHandle, startProcess, waitFor } from "./procs";

export interface TinyproxyHandle {
    proc: ProcHandle;
    /** `http://127.0.0.1:PORT`, without credentials. */
    url: string;
    /** Its log: one `CONNECT` line per tunnel it opened (LogLevel Connect). */
    log(): string;
    stop(): Promise<void>;
}

/**
 * Starts tinyproxy in `dir` with `hosts` as the only /etc/hosts it sees (`name ip` pairs), and with
 * Basic authentication when `auth` is given.
 */
export async function startTinyproxy(dir: string, hosts: Record<string, string>, auth?: { username: string; password: string }): Promise<TinyproxyHandle> {
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const logFile = path.join(dir, "tinyproxy.log");
    const hostsFile = path.join(dir, "hosts");
    fs.writeFileSync(hostsFile, ["127.0.0.1 localhost", ...Object.entries(hosts).map(([name, ip]) => `${ip} ${name}`)].join("\n") + "\n");
    const conf = [
        `Port ${port}`,
        "Listen 127.0.0.1",
        "Timeout 60",
        `LogFile "${logFile}"`,
        "LogLevel Connect",
        "MaxClients 20",
        "Allow 127.0.0.1",
        ...(auth ? [`BasicAuth ${auth.username} ${auth.password}`] : []),
    ];
    const confFile = path.join(dir, "tinyproxy.conf");
    fs.writeFileSync(confFile, conf.join("\n") + "\n", { mode: 0o600 });
    // unshare and sh exec into tinyproxy: the PID started is tinyproxy's.
    const proc = startProcess(
        "unshare",
        ["--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$1" /etc/hosts && exec tinyproxy -d -c "$2"', "sh", hostsFile, confFile],
        { logFile: path.join(dir, "tinyproxy.out") },
    );
    await waitFor(
        () =>
            new Promise<boolean>((resolve) => {
                const s = net.connect(port, "127.0.0.1", () => {
                    s.end();
                    resolve(true);
                });
                s.once("error", () => resolve(false));
            }),
        10_000,
        `tinyproxy on 127.0.0.1:${port}`,
        { proc },
    );
    return {
        proc,
        url: `http://127.0.0.1:${port}`,
        log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : ""),
        stop: () => proc.stop(),
    };
}
