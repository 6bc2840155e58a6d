/**
 * Reads what the container test needs from examples/kubernetes/deployment.yaml:
 * the ConfigMap's config and the pod's command, security settings and
 * volumes. Not a YAML parser: it finds each setting by its key in the layout
 * the example has, and fails naming the setting when it is missing, so the
 * example cannot drift from what the test runs.
 *
 * @module
 */

/** The pod spec's settings the test reproduces with podman flags. */
export interface KubernetesExample {
  /** The ConfigMap's file name (`app.toml`) and its text. */
  configFile: string;
  appToml: string;
  command: string[];
  workingDir: string;
  runAsUser: number;
  runAsGroup: number;
  terminationGracePeriodSeconds: number;
  /** Where the ConfigMap is mounted (a directory) and the emptyDir. */
  configMount: string;
  emptyDirMount: string;
  /** From the config: seconds. */
  shutdownDelay: number;
  gracefulTimeout: number;
}

function must<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) {
    throw new Error(`examples/kubernetes/deployment.yaml: ${what} not found`);
  }
  return value;
}

/** The value of the first `key: value` line (after `from`), unquoted. */
function scalar(yaml: string, key: string, from = 0): string | undefined {
  const m = new RegExp(`^\\s*-?\\s*${key}:\\s*(.+?)\\s*$`, "m").exec(yaml.slice(from));
  return m?.[1].replace(/^"(.*)"$/, "$1");
}

/** The mountPath of the volume mount named `name`. */
function mountPath(yaml: string, name: string): string {
  const at = yaml.search(new RegExp(`^\\s*- name: ${name}\\s*\\n\\s*mountPath:`, "m"));
  return must(at >= 0 ? scalar(yaml, "mountPath", at) : undefined, `volumeMount ${name}`);
}

/** A number key of the TOML text (`key = 5`). */
function tomlNumber(toml: string, key: string): number {
  const m = new RegExp(`^${key}\\s*=\\s*([\\d.]+)`, "m").exec(toml);
  return Number(must(m?.[1], `${key} in the ConfigMap's config`));
}

/** Reads the example (see the module notes). */
export function readKubernetesExample(path: string): KubernetesExample {
  const yaml = Deno.readTextFileSync(path);
  // The ConfigMap's one file: a block scalar indented under `data:`.
  const block = must(/^ {2}([\w.-]+): \|\n((?: {4}.*\n|\s*\n)+)/m.exec(yaml), "ConfigMap data");
  const appToml = block[2].split("\n").map((l) => l.slice(4)).join("\n").trim() + "\n";
  const expect = (key: string, value: string) => {
    const got = scalar(yaml, key);
    if (got !== value) throw new Error(`deployment.yaml: expected ${key}: ${value}, got ${got}`);
  };
  // The settings the podman flags stand for; each must be there as the test assumes.
  expect("runAsNonRoot", "true");
  expect("readOnlyRootFilesystem", "true");
  expect("allowPrivilegeEscalation", "false");
  expect("drop", '["ALL"]');
  const emptyDir = must(/- name: (\w+)\n\s*emptyDir:/.exec(yaml)?.[1], "an emptyDir volume");
  const configVolume = must(/- name: (\w+)\n\s*configMap:/.exec(yaml)?.[1], "a configMap volume");
  return {
    configFile: block[1],
    appToml,
    command: JSON.parse(must(scalar(yaml, "command"), "the container command")),
    workingDir: must(scalar(yaml, "workingDir"), "workingDir"),
    runAsUser: Number(must(scalar(yaml, "runAsUser"), "runAsUser")),
    runAsGroup: Number(must(scalar(yaml, "runAsGroup"), "runAsGroup")),
    terminationGracePeriodSeconds: Number(
      must(scalar(yaml, "terminationGracePeriodSeconds"), "terminationGracePeriodSeconds"),
    ),
    configMount: mountPath(yaml, configVolume),
    emptyDirMount: mountPath(yaml, emptyDir),
    shutdownDelay: tomlNumber(appToml, "shutdown_delay"),
    gracefulTimeout: tomlNumber(appToml, "graceful_timeout"),
  };
}
