/**
 * deploy/kubernetes/: every manifest parses, is valid against the Kubernetes API schemas
 * (kubernetes-models, offline), is listed in the kustomization, and holds the invariants the
 * gateway needs: probe paths and ports agree with the ConfigMap's TOML (read by the gateway's own
 * parseConfig), the pod runs as the image's non-root user on a read-only root file system, and the
 * preStop sleep plus grace_period fit in terminationGracePeriodSeconds. Each check is also shown
 * to fail on a temp copy broken on purpose.
 *
 * kubernetes-models' validate() checks types, required fields and formats but lets unknown fields
 * through, which the API server refuses (kubectl's default strict field validation); the field
 * names of every type are therefore also read from its declaration files and checked here.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ConfigMap, type IConfigMap, type IService, Service } from "kubernetes-models/v1";
import type { IContainer, IContainerPort, IPodSpec } from "kubernetes-models/v1";
import { Deployment, type IDeployment } from "kubernetes-models/apps/v1";
import { type IPodDisruptionBudget, PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { parseConfig } from "../../src/config/mod.ts";
import type { GatewayConfig } from "../../src/config/mod.ts";

const DEPLOY_DIR = new URL("../../deploy/kubernetes/", import.meta.url).pathname;
const BENCHMARKS = new URL("../../docs/benchmarks.md", import.meta.url).pathname;
const IMAGE_USER = 65534;
const CONFIG_PATH = "/etc/sticky-gateway/config.toml";

/** A manifest's object, with the file it came from. */
interface Manifest {
  readonly file: string;
  readonly object: { apiVersion: string; kind: string; metadata?: { name?: string } };
}

/** A kind's schema validator and its type's name in kubernetes-models' declarations. */
interface Model {
  readonly validate: (data: never) => void;
  readonly type: string;
}

/** The models by `apiVersion/kind`: a kind not here is an error (add it here). */
const MODELS: Record<string, Model> = {
  "v1/ConfigMap": {
    validate: (data) => new ConfigMap(data).validate(),
    type: "IIoK8sApiCoreV1ConfigMap",
  },
  "v1/Service": {
    validate: (data) => new Service(data).validate(),
    type: "IIoK8sApiCoreV1Service",
  },
  "apps/v1/Deployment": {
    validate: (data) => new Deployment(data).validate(),
    type: "IIoK8sApiAppsV1Deployment",
  },
  "policy/v1/PodDisruptionBudget": {
    validate: (data) => new PodDisruptionBudget(data).validate(),
    type: "IIoK8sApiPolicyV1PodDisruptionBudget",
  },
};

/** Field name → its declared type (`Array<…>`, a type name, or other text), by type name. */
type FieldTypes = Map<string, Map<string, string>>;
let declaredFields: FieldTypes | undefined;

/**
 * The fields of every interface kubernetes-models declares (its `.d.ts` files and those of its
 * apimachinery package), under the long names its files import each other by (IIoK8s…).
 */
function fieldTypes(): FieldTypes {
  if (declaredFields !== undefined) return declaredFields;
  const models = realpathSync(new URL("../../node_modules/kubernetes-models", import.meta.url));
  const types: FieldTypes = new Map();
  for (const dir of [models, join(models, "..", "@kubernetes-models", "apimachinery")]) {
    for (const file of readdirSync(dir, { recursive: true }) as string[]) {
      if (!file.endsWith(".d.ts") || file.includes("node_modules")) continue;
      const text = readFileSync(join(dir, file), "utf8");
      const alias = /^export type \{ (I\w+) as (IIoK8s\w+)/m.exec(text);
      if (alias === null) continue;
      const body = new RegExp(`^export interface ${alias[1]}\\b[^{]*\\{\\n([\\s\\S]*?)\\n\\}`, "m")
        .exec(text);
      if (body === null) continue;
      const fields = new Map<string, string>();
      for (const [, name, type] of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*?);?$/gm)) {
        fields.set(name, type);
      }
      types.set(alias[2], fields);
    }
  }
  assert.ok(types.size > 500, `kubernetes-models declares ${types.size} types`);
  return declaredFields = types;
}

/** The paths in `value` that its declared `type` has no field for. */
function unknownFields(value: unknown, type: string, path: string): string[] {
  const element = /^Array<(.+)>$/.exec(type);
  if (element !== null) {
    if (!Array.isArray(value)) return [];
    return value.flatMap((item, i) => unknownFields(item, element[1], `${path}[${i}]`));
  }
  const fields = fieldTypes().get(type);
  // Maps (labels, data), IntOrString and Quantity have no declared fields: any key is fine.
  if (fields === undefined || typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const childType = fields.get(key);
    return childType === undefined
      ? [`${path}.${key}`]
      : unknownFields(child, childType, `${path}.${key}`);
  });
}

/**
 * Reads the YAML as Kubernetes does (sigs.k8s.io/yaml is YAML 1.1: `0440` is octal there, decimal
 * in YAML 1.2), one object per document.
 */
function readYaml(file: string): unknown[] {
  const documents = parseAllDocuments(readFileSync(file, "utf8"), { version: "1.1" });
  const list = Array.isArray(documents) ? documents : [documents];
  return list.map((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0].message}`);
    return document.toJS() as unknown;
  });
}

/** The kustomization's resources, checked to be exactly the other YAML files of `dir`. */
function kustomizationResources(dir: string): string[] {
  const [kustomization] = readYaml(join(dir, "kustomization.yaml")) as {
    kind?: string;
    resources?: string[];
  }[];
  assert.equal(kustomization.kind, "Kustomization", "kustomization.yaml: kind");
  const listed = kustomization.resources ?? [];
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml");
  assert.deepEqual([...listed].sort(), files.sort(), "kustomization.yaml resources vs files");
  return listed;
}

/** Every object of every listed file, each validated against its API schema. */
function readManifests(dir: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of kustomizationResources(dir)) {
    for (const object of readYaml(join(dir, file)) as Manifest["object"][]) {
      const model = MODELS[`${object.apiVersion}/${object.kind}`];
      assert.ok(model, `${file}: no schema for ${object.apiVersion} ${object.kind}`);
      try {
        model.validate(object as never);
      } catch (error) {
        throw new Error(`${file} (${object.kind}): ${(error as Error).message}`);
      }
      assert.ok(fieldTypes().has(model.type), `declarations of ${model.type}`);
      const unknown = unknownFields(object, model.type, object.kind).join(", ");
      assert.equal(unknown, "", `${file}: unknown fields ${unknown} (the API server refuses them)`);
      assert.ok(object.metadata?.name, `${file}: metadata.name`);
      manifests.push({ file, object });
    }
  }
  return manifests;
}

function only<T>(manifests: Manifest[], kind: string, name?: string): T {
  const found = manifests.filter((m) =>
    m.object.kind === kind && (name === undefined || m.object.metadata?.name === name)
  );
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` named ${name}` : ""}`);
  return found[0].object as T;
}

/** The ConfigMap's TOML through the gateway's own loader, its token file beside it as mounted. */
function gatewayConfig(configMap: IConfigMap, pod: IPodSpec): GatewayConfig {
  const text = configMap.data?.["config.toml"];
  assert.ok(text, "the ConfigMap has config.toml");
  const projected = pod.volumes?.find((v) => v.projected)?.projected?.sources ?? [];
  const dir = mkdtempSync(join(tmpdir(), "sticky-gateway-k8s-"));
  try {
    for (const source of projected) {
      for (const item of source.secret?.items ?? []) {
        writeFileSync(join(dir, item.path), "0123456789abcdef0123456789abcdef\n");
      }
    }
    writeFileSync(join(dir, "config.toml"), text);
    return parseConfig(text, join(dir, "config.toml"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function containerPort(container: IContainer, port: number | string | undefined): number {
  if (typeof port === "number") return port;
  const named = container.ports?.find((p: IContainerPort) => p.name === port);
  assert.ok(named, `container port named ${port}`);
  return named.containerPort;
}

/** The largest peak RSS (MiB) of the compiled binary's rows in docs/benchmarks.md. */
function measuredBinaryPeakMiB(): number {
  const lines = readFileSync(BENCHMARKS, "utf8").split("\n");
  const header = lines.find((l) => l.startsWith("| Target |") && l.includes("peak RSS"));
  assert.ok(header, "docs/benchmarks.md has a table with a peak RSS column");
  const column = header.split("|").findIndex((c) => c.trim() === "peak RSS");
  const peaks = lines.filter((l) => l.startsWith("| gateway (binary) |"))
    .map((l) => /^(\d+) MiB$/.exec(l.split("|")[column].trim()))
    .filter((m) => m !== null).map((m) => Number(m[1]));
  assert.ok(peaks.length > 0, "docs/benchmarks.md has peak RSS rows for gateway (binary)");
  return Math.max(...peaks);
}

function mebibytes(quantity: string | number | undefined): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(String(quantity));
  assert.ok(match, `memory ${quantity} in Mi or Gi`);
  return Number(match[1]) * (match[2] === "Gi" ? 1024 : 1);
}

/** Probes on the admin listener's port and paths, the listeners on 0.0.0.0, the token mounted. */
function checkProbesAndPorts(container: IContainer, pod: IPodSpec, config: GatewayConfig): void {
  assert.ok(config.admin, "the TOML has [admin]");
  assert.equal(config.admin.listen.host, "0.0.0.0", "admin listens on all interfaces for probes");
  assert.equal(config.server.listen.host, "0.0.0.0", "the server listens on all interfaces");
  assert.ok(config.admin.token, "a non-loopback admin listener has a token");
  const live = container.livenessProbe?.httpGet;
  const ready = container.readinessProbe?.httpGet;
  assert.equal(live?.path, "/healthz", "liveness path");
  assert.equal(ready?.path, "/readyz", "readiness path");
  assert.equal(containerPort(container, live?.port), config.admin.listen.port, "liveness port");
  assert.equal(containerPort(container, ready?.port), config.admin.listen.port, "readiness port");
  assert.equal(containerPort(container, "http"), config.server.listen.port, "http port");
  const args = container.args ?? [];
  assert.equal(args[args.indexOf("--config") + 1], CONFIG_PATH, "--config");
  assert.ok(args.includes("--watch"), "--watch, so that a ConfigMap update is reloaded");
  const mount = container.volumeMounts?.find((m) => `${m.mountPath}/config.toml` === CONFIG_PATH);
  assert.ok(mount?.readOnly, `a read-only mount holds ${CONFIG_PATH}`);
  assert.ok(!mount.subPath, "a directory mount (the kubelet never updates a subPath)");
  assert.ok(pod.volumes?.some((v) => v.name === mount.name && v.projected), "projected volume");
}

/** Non-root as the image's user, read-only root, no escalation, no capabilities, seccomp. */
function checkSecurity(container: IContainer, pod: IPodSpec): void {
  const podContext = pod.securityContext ?? {};
  const context = container.securityContext ?? {};
  assert.equal(context.runAsNonRoot ?? podContext.runAsNonRoot, true, "runAsNonRoot");
  assert.equal(context.runAsUser ?? podContext.runAsUser, IMAGE_USER, "runAsUser");
  assert.equal(context.readOnlyRootFilesystem, true, "readOnlyRootFilesystem");
  assert.equal(context.allowPrivilegeEscalation, false, "allowPrivilegeEscalation");
  assert.deepEqual(context.capabilities?.drop, ["ALL"], "capabilities.drop");
  const seccomp = context.seccompProfile ?? podContext.seccompProfile;
  assert.equal(seccomp?.type, "RuntimeDefault", "seccompProfile");
}

/** preStop sleep + grace_period < terminationGracePeriodSeconds; resources from the bench. */
function checkShutdownAndResources(
  container: IContainer,
  pod: IPodSpec,
  config: GatewayConfig,
): void {
  const sleep = container.lifecycle?.preStop?.sleep?.seconds;
  assert.ok(sleep !== undefined && sleep > 0, "preStop uses the kubelet's sleep action");
  const termination = pod.terminationGracePeriodSeconds ?? 30;
  const grace = config.server.gracePeriodMs / 1000;
  assert.ok(
    sleep + grace < termination,
    `preStop sleep ${sleep} s + grace_period ${grace} s < terminationGracePeriodSeconds ${termination}`,
  );
  const request = mebibytes(container.resources?.requests?.memory);
  const limit = mebibytes(container.resources?.limits?.memory);
  const peak = measuredBinaryPeakMiB();
  assert.ok(request >= peak, `memory request ${request} Mi >= measured peak ${peak} MiB`);
  assert.ok(limit >= request, "memory limit >= request");
  assert.ok(container.resources?.requests?.cpu, "a CPU request");
}

/** Selectors select the pods; the Service targets a named container port. */
function checkSelectors(manifests: Manifest[], deployment: IDeployment): void {
  const labels = deployment.spec?.template.metadata?.labels ?? {};
  const selects = (selector: Record<string, string> | undefined, what: string) => {
    assert.ok(selector && Object.keys(selector).length > 0, `${what} has a selector`);
    for (const [k, v] of Object.entries(selector)) assert.equal(labels[k], v, `${what}: ${k}`);
  };
  selects(deployment.spec?.selector.matchLabels, "Deployment");
  const service = only<IService>(manifests, "Service", deployment.metadata?.name);
  selects(service.spec?.selector, "Service");
  const container = deployment.spec?.template.spec?.containers[0];
  for (const port of service.spec?.ports ?? []) {
    assert.ok(container && containerPort(container, port.targetPort), "Service targetPort");
  }
  const budget = only<IPodDisruptionBudget>(manifests, "PodDisruptionBudget");
  selects(budget.spec?.selector?.matchLabels, "PodDisruptionBudget");
}

/** The headless Service is the one the TOML's DNS example and servers name. */
function checkHeadlessBackends(manifests: Manifest[], configMap: IConfigMap): void {
  const text = configMap.data?.["config.toml"] ?? "";
  const dns = /^#.*\{ dns = "([^".]+)\.([^".]+)\.svc\.cluster\.local:(\d+)", type = "A"[ ,}]/m
    .exec(text);
  assert.ok(dns, "the ConfigMap shows the DNS discovery example (commented)");
  const service = only<IService>(manifests, "Service", dns[1]);
  assert.equal(service.spec?.clusterIP, "None", "the backends' Service is headless");
  assert.ok(service.spec?.ports?.some((p) => p.port === Number(dns[3])), "its port");
  assert.ok(text.includes(`"${dns[1]}-0.${dns[1]}.${dns[2]}.svc.cluster.local:${dns[3]}"`));
}

/** All checks of one manifest directory; throws on the first that fails. */
function checkManifestDir(dir: string): void {
  const manifests = readManifests(dir);
  const deployment = only<IDeployment>(manifests, "Deployment");
  const pod = deployment.spec?.template.spec;
  assert.ok(pod, "the Deployment has a pod template");
  const container = pod.containers[0];
  const volume = pod.volumes?.find((v) => v.projected);
  const configMapName = volume?.projected?.sources?.find((s) => s.configMap)?.configMap?.name;
  const configMap = only<IConfigMap>(manifests, "ConfigMap", configMapName);
  const config = gatewayConfig(configMap, pod);
  checkProbesAndPorts(container, pod, config);
  checkSecurity(container, pod);
  checkShutdownAndResources(container, pod, config);
  checkSelectors(manifests, deployment);
  checkHeadlessBackends(manifests, configMap);
}

/** A change made to a temp copy of deploy/kubernetes. */
type Breakage = (dir: string) => void;

/** Changes `file`'s text in the copy (the edit must change something). */
function edit(file: string, change: (text: string) => string): Breakage {
  return (dir) => {
    const path = join(dir, file);
    const before = readFileSync(path, "utf8");
    const after = change(before);
    assert.notEqual(after, before, `the edit of ${file} changes it`);
    writeFileSync(path, after);
  };
}

/** Runs every check on a temp copy of deploy/kubernetes broken by `breakage`. */
function checkBrokenCopy(breakage: Breakage): void {
  const dir = mkdtempSync(join(tmpdir(), "sticky-gateway-k8s-broken-"));
  try {
    cpSync(DEPLOY_DIR, dir, { recursive: true });
    breakage(dir);
    checkManifestDir(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BROKEN: readonly [string, Breakage, RegExp][] = [
  [
    "a port that is not a number",
    edit("service.yaml", (t) => t.replace("port: 80", "port: eighty")),
    /must be integer/,
  ],
  [
    "a file the kustomization does not list",
    (dir) => cpSync(join(dir, "service.yaml"), join(dir, "extra.yaml")),
    /resources vs files/,
  ],
  [
    "a pod without its required containers",
    edit("deployment.yaml", (t) => t.replace(/^ {6}containers:/m, "      initContainers:")),
    /spec\/template\/spec must have required property containers/,
  ],
  [
    "a misspelt field",
    edit("deployment.yaml", (t) => t.replace("timeoutSeconds: 2", "timeoutSecond: 2")),
    /unknown fields Deployment\.spec\.template\.spec\.containers\[0\]\.livenessProbe\.timeoutSecond /,
  ],
  [
    "a readiness probe on the wrong path",
    edit("deployment.yaml", (t) => t.replace("path: /readyz", "path: /ready")),
    /readiness path/,
  ],
  [
    "an admin port the probes do not use",
    edit("configmap.yaml", (t) => t.replace(`"0.0.0.0:9901"`, `"0.0.0.0:9902"`)),
    /liveness port/,
  ],
  [
    "an admin listener without a token",
    edit("configmap.yaml", (t) => t.replace(/\n\s*token_file = .*/, "")),
    /is not loopback; set admin.token/,
  ],
  [
    "a writable root file system",
    edit("deployment.yaml", (t) => t.replace("Filesystem: true", "Filesystem: false")),
    /readOnlyRootFilesystem/,
  ],
  [
    "root",
    edit("deployment.yaml", (t) => t.replaceAll("runAsUser: 65534", "runAsUser: 0")),
    /runAsUser/,
  ],
  [
    "a preStop sleep longer than the time left",
    edit("deployment.yaml", (t) => t.replace("seconds: 5", "seconds: 15")),
    /preStop sleep 15 s \+ grace_period 20 s < terminationGracePeriodSeconds 30/,
  ],
  [
    "a grace_period as long as the pod's",
    edit("configmap.yaml", (t) => t.replace(`grace_period = "20s"`, `grace_period = "30s"`)),
    /grace_period 30 s/,
  ],
  [
    "a memory request below the measured RSS",
    edit("deployment.yaml", (t) => t.replace("memory: 128Mi", "memory: 64Mi")),
    /memory request 64 Mi >= measured peak/,
  ],
  [
    "a Service selecting no gateway pod",
    edit("service.yaml", (t) => t.replace(/(selector:\n\s+\S+:) sticky-gateway/, "$1 other")),
    /Service: app.kubernetes.io\/name/,
  ],
  [
    "a headless Service named unlike the DNS example",
    edit(
      "backend-headless-service.yaml",
      (t) => t.replace("name: app-backend\n", "name: backends\n"),
    ),
    /exactly one Service named app-backend/,
  ],
];

describe("deploy/kubernetes manifests", () => {
  it("are listed, schema-valid and hold the gateway's invariants", () => {
    checkManifestDir(DEPLOY_DIR);
  });

  for (const [what, breakage, message] of BROKEN) {
    it(`are refused with ${what}`, () => {
      assert.throws(() => checkBrokenCopy(breakage), message);
    });
  }
});
