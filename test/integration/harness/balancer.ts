// A stand-in for kube-proxy in front of a Service's replicas: a TCP listener on the ClusterIP that
// gives each new connection to the next ready endpoint in turn. As with kube-proxy, an endpoint
// taken out only stops getting new connections; established ones go on to the same backend.

import * as net from "node:net";

export interface Backend {
    host: string;
    port: number;
}

export interface Balancer {
    /** Endpoints now getting new connections. */
    endpoints(): Backend[];
    add(b: Backend): void;
    remove(b: Backend): void;
    /** How many connections each `host:port` got. */
    counts(): Record<string, number>;
    close(): Promise<void>;
}

export async function startBalancer(listen: Backend, backends: Backend[]): Promise<Balancer> {
    let endpoints = [...backends];
    const counts: Record<string, number> = {};
    const sockets = new Set<net.Socket>();
    let next = 0;
    const server = net.createServer((client) => {
        if (endpoints.length === 0) {
            client.destroy();
            return;
        }
        const b = endpoints[next++ % endpoints.length];
        counts[`${b.host}:${b.port}`] = (counts[`${b.host}:${b.port}`] ?? 0) + 1;
        const upstream = net.connect(b.port, b.host);
        for (const s of [client, upstream]) {
            sockets.add(s);
            s.on("close", () => sockets.delete(s));
            s.on("error", () => s.destroy());
        }
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
        client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(listen.port, listen.host, resolve));
    const same = (a: Backend, b: Backend) => a.host === b.host && a.port === b.port;
    return {
        endpoints: () => [...endpoints],
        add: (b) => void (endpoints = [...endpoints.filter((e) => !same(e, b)), b]),
        remove: (b) => void (endpoints = endpoints.filter((e) => !same(e, b))),
        counts: () => ({ ...counts }),
        close: () =>
            new Promise<void>((resolve) => {
                for (const s of sockets) s.destroy();
                server.close(() => resolve());
            }),
    };
}
