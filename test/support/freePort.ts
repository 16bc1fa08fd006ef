import * as http from "http";
import type { AddressInfo } from "net";

/** A loopback port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
}
