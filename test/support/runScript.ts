/** Runs a probe script as a child process without blocking the event loop (stand-in servers may live in this process). */
import { spawn } from "child_process";

export interface RunResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** Runs `executable argv` with exactly `env`; rejects when it has not finished after `timeoutMs`. */
export function runScript(executable: string, argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(executable, argv, { env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error(`${argv.join(" ")} did not finish in ${timeoutMs}ms: ${stderr}`));
        }, timeoutMs);
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr });
        });
    });
}

/**
 * Whether python3 compiles `uploaded` (the text a container receives) to the same code as the
 * file at `localPath` (the script the tests run): exit code 0 when it does, and stderr.
 */
export function compileLikeLocal(uploaded: string, localPath: string): Promise<{ code: number | null; stderr: string }> {
    const name = JSON.stringify(localPath.split("/").pop() ?? "script.py");
    const compare = [
        "import sys",
        `uploaded = compile(sys.stdin.read(), ${name}, 'exec')`,
        `local = compile(open(sys.argv[1], encoding='utf-8').read(), ${name}, 'exec')`,
        "sys.exit(0 if uploaded.co_code == local.co_code and uploaded.co_consts == local.co_consts else 3)",
    ].join("\n");
    const child = spawn("python3", ["-c", compare, localPath]);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.stdin.end(uploaded);
    return new Promise((resolve) => child.on("close", (code) => resolve({ code, stderr })));
}

export interface LoopRun<T> {
    /** The JSON lines printed until the stop. */
    readonly lines: T[];
    /** Whether the script was still running when `count` lines had arrived (or the wait ran out). */
    readonly wasRunning: boolean;
    /** Its exit code after SIGTERM. */
    readonly exitCode: number | null;
}

/**
 * Starts a looping probe, waits (at most 10 s) until it printed `count` JSON lines, stops it
 * with SIGTERM as Docker does, and returns what it printed and how it ended.
 */
export async function runLoopUntil<T>(executable: string, argv: string[], env: NodeJS.ProcessEnv, count: number): Promise<LoopRun<T>> {
    const child = spawn(executable, argv, { env });
    const lines: T[] = [];
    let buffer = "";
    child.stdout.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("utf8");
        const parts = buffer.split("\n");
        buffer = parts.pop() ?? "";
        for (const part of parts) lines.push(JSON.parse(part) as T);
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    const deadline = Date.now() + 10_000;
    while (lines.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const wasRunning = child.exitCode === null;
    child.kill("SIGTERM");
    return { lines, wasRunning, exitCode: await exited };
}
