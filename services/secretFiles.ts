/**
 * Secret files inside a container without making its uploaded configs secret.
 *
 * Pulumi marks a whole input property secret when any part of it is: a secret among a
 * container's `uploads` would hide every uploaded config in `pulumi preview --diff`. So a
 * secret travels in the container's environment (one secret property, `envs`), and a small
 * entrypoint writes it to its file, drops it from the environment and starts the real
 * program. The configs stay in `uploads`, readable in every diff.
 */

export interface SecretFile {
    /** Absolute path of the file in the container. */
    readonly path: string;
    /** Environment variable that carries the content. */
    readonly env: string;
    /** File mode: 0400 for a key only the (root) process reads, 0444 for a file worker processes read. */
    readonly mode: "0400" | "0444";
}

/**
 * `entrypoints` for the container: writes each file, then `exec`s `program` (the image's own
 * entrypoint, if it has one) with the container's `command` as arguments. A failed write
 * stops the start, and Docker's restart policy tries again.
 */
export function secretFilesEntrypoint(files: readonly SecretFile[], program: readonly string[] = []): string[] {
    for (const word of program) {
        if (!/^[A-Za-z0-9._/-]+$/.test(word)) throw new Error(`program word "${word}" is not plain`);
    }
    const steps = files.map((file) => {
        if (!/^\/[A-Za-z0-9._/-]+$/.test(file.path) || file.path.includes("..")) throw new Error(`secret file path "${file.path}" is not a plain absolute path`);
        if (!/^[A-Z][A-Z0-9_]*$/.test(file.env)) throw new Error(`secret file variable "${file.env}" is not an upper-case variable name`);
        const directory = file.path.slice(0, file.path.lastIndexOf("/")) || "/";
        // Separate commands, not an && list: `set -e` ignores a failure inside a list.
        return `mkdir -p ${directory}; printf '%s' "$${file.env}" > ${file.path}; chmod ${file.mode} ${file.path}; unset ${file.env}`;
    });
    // umask 077: the file is never readable by others, not even between printf and chmod.
    return ["/bin/sh", "-c", ["set -e", "umask 077", ...steps, `exec ${[...program, '"$@"'].join(" ")}`].join("; "), "secret-files"];
}
