import * as http from "http";
import type { AddressInfo } from "net";

/** A port nothing listens on at `host` (bound, then released); loopback by default. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, host, resolve);
    });
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
}

/** `count` different free ports at `host`. */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
    const ports = new Set<number>();
    while (ports.size < count) ports.add(await freePort(host));
    return [...ports];
}
