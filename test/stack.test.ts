/**
 * The whole program under Pulumi's mocks: what `pulumi up` would ask Docker and Grafana for.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { COMPONENT_LABEL } from "../services/docker";
import { GPU_DETECTION_OVERRIDE } from "../config/hostFacts";
import { JOBS } from "../observability/logSchema";
import type { PromtailConfig } from "../services/promtail/promtailConfig";
import { GRAFANA_ENTRYPOINT } from "../services/grafana/grafana";
import { renderLokiConfig } from "../services/loki/lokiConfig";
import { DEFAULT_IMAGES, DEFAULT_LOKI_LIMITS } from "../config/schema";
import { ProgramRun, RecordedResource, runProgram } from "./mocks";
import { JobSimulator, type DockerContainer } from "./support/promtailSimulator";

const CONTAINER = "docker:index/container:Container";
const IMAGE = "docker:index/remoteImage:RemoteImage";
const VOLUME = "docker:index/volume:Volume";
const NETWORK = "docker:index/network:Network";
const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";

/** The settings every run shares, so the host name of the test machine never leaks in. */
const BASE = { hostLabel: "lab-box" };

interface Mount {
    type: string;
    source: string;
    target: string;
    readOnly?: boolean;
}
interface Upload {
    file: string;
    content: string;
}

function container(stack: ProgramRun, suffix: string): RecordedResource {
    return stack.one(CONTAINER, `${suffix}-container`);
}

function uploadOf(resource: RecordedResource, file: string): string {
    const upload = (resource.inputs.uploads as Upload[]).find((candidate) => candidate.file === file);
    if (!upload) throw new Error(`${resource.name} uploads no ${file}`);
    return upload.content;
}

describe("the default stack", () => {
    let stack: ProgramRun;
    beforeAll(async () => {
        stack = await runProgram(BASE);
    });

    it("pulls each image by its pinned reference and keeps it on destroy", () => {
        const images = stack.ofType(IMAGE).map((image) => [image.inputs.name, image.inputs.keepLocally]);
        expect(images.sort()).toEqual(
            [
                [DEFAULT_IMAGES.loki, true],
                [DEFAULT_IMAGES.volumeInit, true],
                [DEFAULT_IMAGES.promtail, true],
                [DEFAULT_IMAGES.grafana, true],
                [DEFAULT_IMAGES.probe, true],
            ].sort(),
        );
        // Containers run the pulled image, by id, not a name that could move.
        for (const resource of stack.ofType(CONTAINER)) expect(resource.inputs.image, resource.name).toMatch(/^sha256:/);
    });

    it("names every container after the prefix and labels it as ours", () => {
        const names = stack.ofType(CONTAINER).map((resource) => resource.inputs.name);
        expect(names.sort()).toEqual(["obs-grafana", "obs-loki", "obs-loki-volume-init", "obs-ollama-probe", "obs-promtail"]);
        for (const resource of stack.ofType(CONTAINER)) {
            expect(resource.inputs.labels, resource.name).toEqual([{ label: COMPONENT_LABEL, value: expect.any(String) }]);
        }
    });

    it("publishes only Grafana and Loki, on 127.0.0.1", () => {
        expect(container(stack, "loki").inputs.ports).toEqual([{ internal: 3100, external: 3100, ip: "127.0.0.1" }]);
        expect(container(stack, "grafana").inputs.ports).toEqual([{ internal: 3000, external: 3000, ip: "127.0.0.1" }]);
        expect(container(stack, "promtail").inputs.ports).toBeUndefined();
        expect(stack.one(CONTAINER, "ollama-probe-container").inputs.ports).toBeUndefined();
        expect(stack.outputs.grafanaUrl).toBe("http://127.0.0.1:3000");
        expect(stack.outputs.lokiUrl).toBe("http://127.0.0.1:3100");
    });

    it("puts Loki, Promtail and Grafana on one user-defined bridge network", () => {
        const networks = stack.ofType(NETWORK);
        expect(networks).toHaveLength(1);
        expect(networks[0].inputs).toMatchObject({ name: "obs-net", driver: "bridge" });
        for (const suffix of ["loki", "promtail", "grafana"]) {
            expect(container(stack, suffix).inputs.networksAdvanced, suffix).toEqual([{ name: "obs-net" }]);
        }
        expect(stack.outputs.networkName).toBe("obs-net");
    });

    it("mounts host logs and the Docker socket read-only, and keeps state on named volumes", () => {
        const promtail = container(stack, "promtail").inputs;
        const binds = (promtail.mounts as Mount[]).filter((mount) => mount.type === "bind");
        expect(binds.map((mount) => mount.source).sort()).toEqual(["/etc/localtime", "/var/run/docker.sock"]);
        for (const bind of binds) expect(bind, bind.source).toMatchObject({ target: bind.source, readOnly: true });
        expect(promtail.volumes).toEqual([
            { hostPath: "/var/log/deepchat", containerPath: "/var/log/deepchat", readOnly: true },
            { hostPath: "/var/log/ollama", containerPath: "/var/log/ollama", readOnly: true },
        ]);
        expect(promtail.mounts).toContainEqual({ type: "volume", source: "obs-promtail-positions", target: "/var/lib/promtail" });
        expect(container(stack, "loki").inputs.mounts).toEqual([{ type: "volume", source: "obs-loki-data", target: "/loki" }]);
        expect(container(stack, "grafana").inputs.mounts).toEqual([{ type: "volume", source: "obs-grafana-data", target: "/var/lib/grafana" }]);
    });

    it("keeps the data volumes on destroy by default", () => {
        const volumes = stack.ofType(VOLUME);
        expect(volumes.map((volume) => volume.inputs.name).sort()).toEqual(["obs-grafana-data", "obs-loki-data", "obs-promtail-positions"]);
        for (const volume of volumes) expect(volume.options.retainOnDelete, volume.name).toBe(true);
    });

    it("restarts services, rotates their logs, and replaces them delete-first (fixed names and ports)", () => {
        for (const suffix of ["loki-container", "promtail-container", "grafana-container", "ollama-probe-container"]) {
            const resource = stack.one(CONTAINER, suffix);
            expect(resource.inputs, suffix).toMatchObject({ restart: "unless-stopped", logDriver: "json-file", logOpts: { "max-size": "10m", "max-file": "3" } });
            expect(resource.options.deleteBeforeReplace, suffix).toBe(true);
        }
    });

    it("waits until Loki, Promtail and Grafana are healthy, each with a check its image can run", () => {
        const loki = container(stack, "loki").inputs;
        expect(loki).toMatchObject({ wait: true, healthcheck: { tests: ["CMD", "/usr/bin/loki", "-health"] } });
        const grafana = container(stack, "grafana").inputs;
        expect(grafana).toMatchObject({ wait: true });
        expect((grafana.healthcheck as { tests: string[] }).tests.join(" ")).toContain("/api/health");
        const promtail = container(stack, "promtail").inputs;
        expect(promtail).toMatchObject({ wait: true });
        expect((promtail.healthcheck as { tests: string[] }).tests.slice(0, 2)).toEqual(["CMD", "bash"]);
    });

    it("hands Loki's volume to uid 10001 in a one-shot container that runs before Loki", () => {
        const init = stack.one(CONTAINER, "loki-volume-init");
        expect(init.inputs).toMatchObject({
            command: ["chown", "-R", "10001:10001", "/loki"],
            attach: true,
            mustRun: false,
            mounts: [{ type: "volume", source: "obs-loki-data", target: "/loki" }],
        });
        const loki = container(stack, "loki");
        expect(loki.inputs.user).toBe("10001:10001");
        expect(loki.options.dependencies).toContain(init.options.urn);
    });

    it("uploads the rendered configs, so no host file is needed", () => {
        const loki = container(stack, "loki");
        const lokiYaml = uploadOf(loki, "/etc/loki/local-config.yaml");
        expect(parse(lokiYaml)).toEqual(parse(renderLokiConfig(DEFAULT_LOKI_LIMITS)));
        expect(loki.inputs.command).toEqual(["-config.file=/etc/loki/local-config.yaml"]);

        const promtail = container(stack, "promtail");
        const promtailConfig = parse(uploadOf(promtail, "/etc/promtail/config.yml"));
        expect(promtailConfig.clients).toEqual([expect.objectContaining({ url: "http://obs-loki:3100/loki/api/v1/push" })]);
        expect(promtailConfig.positions.filename).toBe("/var/lib/promtail/positions.yaml");
        expect(promtail.inputs.command).toEqual(["-config.file=/etc/promtail/config.yml"]);
    });

    it("turns off everything in Grafana that would call out of the box, and sign-up and anonymous access", () => {
        const envs = container(stack, "grafana").inputs.envs as string[];
        for (const setting of [
            "GF_ANALYTICS_REPORTING_ENABLED=false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES=false",
            "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false",
            "GF_SECURITY_DISABLE_GRAVATAR=true",
            "GF_USERS_ALLOW_SIGN_UP=false",
            "GF_AUTH_ANONYMOUS_ENABLED=false",
            "GF_PLUGINS_PREINSTALL_DISABLED=true",
            "GF_SMTP_ENABLED=false",
        ]) {
            expect(envs).toContain(setting);
        }
        // The configured password is re-applied on every start (see test/services/grafana/grafanaContainer.test.ts).
        expect(container(stack, "grafana").inputs.entrypoints).toEqual(GRAFANA_ENTRYPOINT);
    });

    it("generates the admin password and keeps it secret everywhere it flows", () => {
        const generated = stack.one(RANDOM_PASSWORD, "grafana-admin-password");
        expect(generated.inputs).toMatchObject({ length: 24 });
        const envs = container(stack, "grafana").inputs.envs as string[];
        const passwordEntry = envs.find((entry) => entry.startsWith("GF_SECURITY_ADMIN_PASSWORD="));
        expect(passwordEntry).toMatch(/^GF_SECURITY_ADMIN_PASSWORD=generated-/);
        expect(passwordEntry).not.toBe("GF_SECURITY_ADMIN_PASSWORD=admin");
        expect(envs).toContain("GF_SECURITY_ADMIN_USER=admin");
        expect(container(stack, "grafana").secretPaths).toContain("envs");
        expect(stack.secretOutputs.has("grafanaAdminPassword")).toBe(true);
        expect(stack.secretOutputs.has("grafanaAdminUser")).toBe(false);
        const provider = stack.ofType("pulumi:providers:grafana");
        expect(provider).toHaveLength(1);
        expect(provider[0].secretPaths).toContain("auth");
        expect(provider[0].inputs.auth).toBe(`admin:${String(stack.outputs.grafanaAdminPassword)}`);
    });

    it("configures Grafana only once its container is healthy, then every content resource through that provider", () => {
        const provider = stack.ofType("pulumi:providers:grafana")[0];
        const grafanaContainer = container(stack, "grafana");
        expect(grafanaContainer.inputs.wait).toBe(true);
        expect(provider.options.dependencies).toContain(grafanaContainer.options.urn);
        const content = stack.resources.filter((resource) => resource.type.startsWith("grafana:"));
        expect(content.length).toBeGreaterThanOrEqual(5);
        for (const resource of content) expect(resource.provider, resource.name).toContain(provider.options.urn);
        expect(stack.one("grafana:oss/dataSource:DataSource", "content-loki").inputs).toMatchObject({ url: "http://obs-loki:3100", isDefault: true });
    });

    it("creates the alert rules only once Loki, Promtail and the probe are up, so a fresh deploy does not page", () => {
        const rules = stack.one("grafana:alerting/ruleGroup:RuleGroup", "content-rules");
        for (const component of ["loki", "promtail", "ollama-probe"]) {
            const upstream = container(stack, component);
            expect(upstream.inputs.mustRun, component).toBe(true);
            expect(rules.options.dependencies, component).toContain(upstream.options.urn);
        }
        // Loki and Promtail are waited for until healthy (Loki's /ready needs ~30 s after start).
        expect(container(stack, "loki").inputs.wait).toBe(true);
        expect(container(stack, "promtail").inputs.wait).toBe(true);
    });

    it("exports the named outputs an operator and `npm run verify` read", () => {
        expect(Object.keys(stack.outputs).sort()).toEqual(
            [
                "alertRuleTitles",
                "collectedLogPaths",
                "dashboardUids",
                "dashboardUrls",
                "grafanaAdminPassword",
                "grafanaAdminUser",
                "grafanaUrl",
                "lokiDatasourceUid",
                "lokiUrl",
                "networkName",
            ].sort(),
        );
        expect(stack.outputs.collectedLogPaths).toEqual({ "deepchat-webui": ["/var/log/deepchat/*.log"], "ollama-service": ["/var/log/ollama/*.log"] });
    });
});

/**
 * Docker's documented rule ("Bind mounts", "Differences between -v and --mount behavior",
 * docs.docker.com/engine/storage/bind-mounts/): `-v` (the Engine API's HostConfig.Binds) creates a
 * missing host path as a directory; `--mount` (HostConfig.Mounts) refuses it: "invalid mount config
 * for type "bind": bind source path does not exist" (also measured on Docker 20.10). In
 * kreuzwerker/terraform-provider-docker, behind @pulumi/docker, `volumes` become HostConfig.Binds
 * (resource_docker_container_structures.go, volumeSetToDockerVolumes: "hostPath:containerPath:ro")
 * and `mounts` become HostConfig.Mounts (resource_docker_container_funcs.go).
 */
describe("Promtail on a fresh box, where no configured log directory exists yet", () => {
    /** Host paths a `mounts` bind may name: they exist wherever Docker runs. */
    const PRESENT_ON_EVERY_BOX = ["/etc/localtime", "/var/run/docker.sock"];
    const logSources = { deepchatLogPaths: ["/srv/deepchat/logs/*.log", "/var/log/deepchat/*.log"], ollamaLogPaths: ["/opt/ollama/log/server*.log"] };
    const directories = ["/opt/ollama/log", "/srv/deepchat/logs", "/var/log/deepchat"];

    it("gets each log directory in the Binds form (created if missing), read-only at the same path, and none as a `mounts` bind", async () => {
        const promtail = container(await runProgram({ ...BASE, logSources: JSON.stringify(logSources) }), "promtail").inputs;
        expect(promtail.volumes).toEqual(directories.map((directory) => ({ hostPath: directory, containerPath: directory, readOnly: true })));
        const bindSources = (promtail.mounts as Mount[]).filter((mount) => mount.type === "bind").map((mount) => mount.source);
        expect(bindSources.sort()).toEqual(PRESENT_ON_EVERY_BOX);
        for (const directory of directories) expect(bindSources, directory).not.toContain(directory);
    });

    it("keeps an agent's CA file a `mounts` bind: the operator named that file, and a missing one should fail", async () => {
        const agent = await runProgram(
            { ...BASE, role: "agent", hub: JSON.stringify({ url: "https://10.0.0.5:3101", username: "lab-box", caCertPath: "/etc/ssl/lab-ca.pem" }) },
            { hubPassword: "explicit-password-lab-box" },
        );
        const promtail = container(agent, "promtail").inputs;
        const bindSources = (promtail.mounts as Mount[]).filter((mount) => mount.type === "bind").map((mount) => mount.source);
        expect(bindSources.sort()).toEqual([...PRESENT_ON_EVERY_BOX, "/etc/ssl/lab-ca.pem"].sort());
        expect(promtail.volumes).toEqual([
            { hostPath: "/var/log/deepchat", containerPath: "/var/log/deepchat", readOnly: true },
            { hostPath: "/var/log/ollama", containerPath: "/var/log/ollama", readOnly: true },
        ]);
    });

    it("asks for no host directory when no log file is configured", async () => {
        const promtail = container(await runProgram({ ...BASE, logSources: JSON.stringify({ deepchatLogPaths: [], ollamaLogPaths: [] }) }), "promtail").inputs;
        expect(promtail.volumes).toBeUndefined();
        expect((promtail.mounts as Mount[]).filter((mount) => mount.type === "bind").map((mount) => mount.source).sort()).toEqual(PRESENT_ON_EVERY_BOX);
    });
});

describe("two stacks on one Docker engine (prefixes obs and lab)", () => {
    const saved = process.env[GPU_DETECTION_OVERRIDE];
    afterEach(() => {
        process.env[GPU_DETECTION_OVERRIDE] = saved;
    });

    /** A probe container as the engine would list it: the name and labels the program asked for. */
    function listed(stack: ProgramRun, suffix: string): DockerContainer {
        const inputs = container(stack, suffix).inputs;
        const labels = Object.fromEntries((inputs.labels as { label: string; value: string }[]).map(({ label, value }) => [label, value]));
        return { id: String(inputs.name), name: String(inputs.name), labels };
    }

    it("each Promtail collects its own stack's probe containers and never the other stack's", async () => {
        process.env[GPU_DETECTION_OVERRIDE] = "present";
        const stacks = { obs: await runProgram(BASE), lab: await runProgram({ ...BASE, namePrefix: "lab" }) };
        const lines = [{ text: '{"up":1}', validUtf8: true, stream: "stdout" as const }];
        for (const [own, other] of [
            ["obs", "lab"],
            ["lab", "obs"],
        ] as const) {
            const config = parse(uploadOf(container(stacks[own], "promtail"), "/etc/promtail/config.yml")) as PromtailConfig;
            for (const [job, suffix] of [
                [JOBS.ollamaProbe, "ollama-probe"],
                [JOBS.gpuProbe, "gpu-probe"],
            ] as const) {
                const simulator = new JobSimulator(config, job);
                const ownProbe = listed(stacks[own], suffix);
                expect(ownProbe.name).toBe(`${own}-${suffix}`);
                expect(simulator.runContainer(ownProbe, lines)?.[0].labels, `${own} ${job}`).toEqual({ job, host: "lab-box", container: ownProbe.name });
                expect(simulator.runContainer(listed(stacks[other], suffix), lines), `${own} ${job} sees ${other}`).toBeUndefined();
            }
        }
    });
});

describe("stack settings", () => {
    it("use a configured admin password as given, still secret, and generate none", async () => {
        const stack = await runProgram(BASE, { grafanaAdminPassword: "correct-horse-battery" });
        expect(stack.ofType(RANDOM_PASSWORD)).toHaveLength(0);
        expect(container(stack, "grafana").inputs.envs).toContain("GF_SECURITY_ADMIN_PASSWORD=correct-horse-battery");
        expect(container(stack, "grafana").secretPaths).toContain("envs");
        expect(stack.secretOutputs.has("grafanaAdminPassword")).toBe(true);
    });

    it("let volumes go with the stack when asked", async () => {
        const stack = await runProgram({ ...BASE, keepVolumesOnDestroy: "false" });
        for (const volume of stack.ofType(VOLUME)) expect(volume.options.retainOnDelete, volume.name).toBe(false);
    });

    it("widen Loki to every interface only when asked", async () => {
        const stack = await runProgram({ ...BASE, lokiBindAddress: "0.0.0.0", lokiPort: "3101" });
        expect(container(stack, "loki").inputs.ports).toEqual([{ internal: 3100, external: 3101, ip: "0.0.0.0" }]);
        expect(container(stack, "grafana").inputs.ports).toEqual([{ internal: 3000, external: 3000, ip: "127.0.0.1" }]);
        expect(stack.outputs.lokiUrl).toBe("http://127.0.0.1:3101");
    });

    it("configure Grafana's mail relay, with the password a secret", async () => {
        const stack = await runProgram(
            { ...BASE, smtp: JSON.stringify({ host: "smtp.lab.example:587", user: "grafana", fromAddress: "grafana@lab.example" }) },
            { smtpPassword: "mail-secret" },
        );
        const envs = container(stack, "grafana").inputs.envs as string[];
        expect(envs).toEqual(
            expect.arrayContaining([
                "GF_SMTP_ENABLED=true",
                "GF_SMTP_HOST=smtp.lab.example:587",
                "GF_SMTP_USER=grafana",
                "GF_SMTP_PASSWORD=mail-secret",
                "GF_SMTP_FROM_ADDRESS=grafana@lab.example",
            ]),
        );
        expect(container(stack, "grafana").secretPaths).toContain("envs");
    });

    it("skip the probe container when the probe is off", async () => {
        const stack = await runProgram({ ...BASE, ollamaProbe: JSON.stringify({ enabled: false }) });
        expect(stack.find(CONTAINER, "ollama-probe-container")).toBeUndefined();
        expect(stack.ofType(CONTAINER)).toHaveLength(4);
    });

    it("create no Grafana container for an external Grafana, and point the provider there", async () => {
        const stack = await runProgram(
            { ...BASE, grafanaUrl: "https://grafana.lab.example", grafanaLokiUrl: "http://10.0.0.5:3100", lokiBindAddress: "0.0.0.0" },
            { grafanaAuth: "glsa_service_account_token" },
        );
        expect(stack.find(CONTAINER, "grafana-container")).toBeUndefined();
        expect(stack.ofType(RANDOM_PASSWORD)).toHaveLength(0);
        const provider = stack.ofType("pulumi:providers:grafana")[0];
        expect(provider.inputs.url).toBe("https://grafana.lab.example");
        expect(provider.inputs.auth).toBe("glsa_service_account_token");
        expect(provider.secretPaths).toContain("auth");
        expect(stack.outputs.grafanaUrl).toBe("https://grafana.lab.example");
        expect(stack.outputs.grafanaAdminPassword).toBeUndefined();
        // A shared Grafana keeps its own default datasource; ours is added beside it.
        expect(stack.one("grafana:oss/dataSource:DataSource", "content-loki").inputs).toMatchObject({ url: "http://10.0.0.5:3100", isDefault: false });
    });

    it("fail before anything is created when a value is invalid", async () => {
        await expect(runProgram({ ...BASE, grafanaPort: "70000" })).rejects.toThrow(/grafanaPort: "70000" is not allowed/);
    });
});

describe("a config change touches only the affected container", () => {
    let baseline: ProgramRun;
    beforeAll(async () => {
        baseline = await runProgram(BASE);
    });

    /** Names of the resources whose inputs differ between two runs. */
    function changedResources(before: ProgramRun, after: ProgramRun): string[] {
        const key = (resource: RecordedResource) => `${resource.type}::${resource.name}`;
        const beforeByKey = new Map(before.resources.map((resource) => [key(resource), JSON.stringify(resource.inputs)]));
        const afterKeys = new Set(after.resources.map(key));
        const changed = after.resources.filter((resource) => beforeByKey.get(key(resource)) !== JSON.stringify(resource.inputs)).map(key);
        const removed = before.resources.map(key).filter((name) => !afterKeys.has(name));
        return [...changed, ...removed].sort();
    }

    it.each([
        ["Loki retention", { loki: JSON.stringify({ retention: "30d" }) }, `${CONTAINER}::loki-container`],
        ["Loki ingestion limit", { loki: JSON.stringify({ ingestionRateMb: 6, ingestionBurstSizeMb: 12 }) }, `${CONTAINER}::loki-container`],
        ["container patterns", { logSources: JSON.stringify({ containerPatterns: ["chat-*"] }) }, `${CONTAINER}::promtail-container`],
        ["probe interval", { ollamaProbe: JSON.stringify({ intervalSeconds: 30 }) }, `${CONTAINER}::ollama-probe-container`],
        ["Grafana mail relay", { smtp: JSON.stringify({ host: "smtp.lab.example:25", fromAddress: "g@lab.example" }) }, `${CONTAINER}::grafana-container`],
    ])("%s", async (_change, config, expected) => {
        const changed = await runProgram({ ...BASE, ...config });
        const differences = changedResources(baseline, changed);
        expect(differences).toHaveLength(1);
        expect(differences[0].endsWith(expected.split("::")[1])).toBe(true);
        expect(differences[0].startsWith(CONTAINER)).toBe(true);
    });
});
