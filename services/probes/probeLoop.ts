/**
 * The loop both probe scripts share (services/probes/probe_loop.py): read, print, sleep until
 * the next slot, stop on SIGTERM. Each probe container gets it beside its own script, where
 * Python's import finds it.
 */
import * as fs from "fs";
import * as path from "path";

/** The upload of probe_loop.py into a probe container, next to the probe script in /usr/local/bin. */
export const PROBE_LOOP_UPLOAD = {
    file: "/usr/local/bin/probe_loop.py",
    content: fs.readFileSync(path.join(__dirname, "probe_loop.py"), "utf8"),
    permissions: "0444",
} as const;
