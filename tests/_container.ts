/**
 * A real container engine for the tests: Debian's podman with runc (see
 * docs/deploying.md, "Containers"). No registry is reachable from the test
 * machines, so the image is assembled here, FROM scratch, in the layout a
 * compiled binary ships in:
 *
 *     /usr/local/bin/arbiter   the arbiter: $ARBITER_BIN when given, else a
 *                              launcher running the pinned Deno on the checkout
 *     /usr/local/bin/deno      the pinned Deno (the Deno example app needs it too)
 *     /opt/arbiter/            the checkout (tracked and untracked, not ignored)
 *     /opt/deno-dir/           a warm DENO_DIR: npm packages copied from the host,
 *                              modules compiled at build time; read-only at run time
 *     /usr/bin/python3, /usr/lib/python3.*   for the Dockerfile's Python app
 *     /lib, /lib64             the libraries `ldd` lists for those programs
 *     /bin/sh                  the launcher's shell (a compiled image needs none)
 *     /etc/passwd, /etc/group  nonroot (65532, as in distroless) and app (10001)
 *     /app                     the working directory of the examples (empty)
 *     /tmp                     mode 1777, as a distroless image has it
 *
 * The image is tagged with a hash of everything that goes into it and kept
 * in podman's store, so a second run builds nothing; a fresh machine builds
 * it in a few seconds. Older tags of the same name are removed.
 *
 * @module
 */

import { ARBITER_BIN_ENV, REPO_ROOT } from "./_harness.ts";

/** podman with the runtime that works on these machines (crun refuses hybrid cgroups). */
export const PODMAN = ["podman", "--runtime", "runc"];
/** podman raises these limits by default, which the machine refuses. */
export const ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];
/** The repository of the test image in podman's store. */
export const IMAGE_NAME = "localhost/arbiter-test";

const decoder = new TextDecoder();

function encodeHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The outcome of one podman command. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `podman --runtime runc ARGS` to completion. */
export async function podman(args: string[], cwd?: string): Promise<Run> {
  const out = await new Deno.Command(PODMAN[0], {
    args: [...PODMAN.slice(1), ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Why containers cannot run here, or undefined when they can. */
export async function podmanProblem(): Promise<string | undefined> {
  for (const tool of ["podman", "runc", "ldd", "git"]) {
    const found = await new Deno.Command("sh", {
      args: ["-c", `command -v ${tool}`],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!found.success) return `${tool} is not installed (.ci/run installs podman and runc)`;
  }
  if (Deno.uid() !== 0) return "podman's overlay storage here needs root";
  const info = await podman(["info", "--format", "{{.Store.GraphDriverName}}"]);
  if (info.code !== 0) return `podman info failed: ${info.stderr.trim().split("\n")[0]}`;
  return undefined;
}

/** The libraries `ldd` lists for `programs` (absolute paths, the loader included). */
async function libraries(programs: string[]): Promise<string[]> {
  const out = await new Deno.Command("ldd", { args: programs, stdout: "piped" }).output();
  const libs = new Set<string>();
  for (const line of decoder.decode(out.stdout).split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]);
  }
  return [...libs].sort();
}

/** The checkout's files: tracked, plus untracked ones git does not ignore. */
async function checkoutFiles(): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    cwd: REPO_ROOT,
    stdout: "piped",
  }).output();
  return decoder.decode(out.stdout).split("\0").filter((f) => {
    if (f === "" || f.startsWith(".tools/")) return false;
    try {
      return Deno.lstatSync(`${REPO_ROOT}/${f}`).isFile;
    } catch {
      return false; // deleted but still in the index
    }
  });
}

/** The host's DENO_DIR (where `deno` keeps its npm packages). */
function hostDenoDir(): string {
  return Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`;
}

/** The python the Dockerfile's app runs on, resolved (e.g. /usr/bin/python3.11). */
function hostPython(): string | undefined {
  try {
    return Deno.realPathSync("/usr/bin/python3");
  } catch {
    return undefined;
  }
}

/** Stands where the compiled arbiter goes when ARBITER_BIN is not given. */
export const LAUNCHER = `#!/bin/sh
# Stands where the compiled arbiter goes: runs the pinned Deno on the checkout.
exec /usr/local/bin/deno run --allow-all --unstable-net --quiet --no-prompt --cached-only \\
  --config /opt/arbiter/deno.json /opt/arbiter/main.ts "$@"
`;

const CONTAINERFILE = `FROM scratch
COPY rootfs/ /
ENV DENO_DIR=/opt/deno-dir PATH=/usr/local/bin:/usr/bin:/bin NO_COLOR=1
RUN ["/usr/local/bin/deno", "cache", "--config", "/opt/arbiter/deno.json", \\
     "/opt/arbiter/main.ts", "/opt/arbiter/examples/deno/server.ts"]
`;

/** Copies `from` to `to` inside `root`, making the directories on the way. */
function place(root: string, from: string, to: string, mode?: number): void {
  const dest = `${root}${to}`;
  Deno.mkdirSync(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
  Deno.copyFileSync(from, dest);
  if (mode !== undefined) Deno.chmodSync(dest, mode);
}

function copyTree(from: string, to: string, skip: (name: string) => boolean): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const entry of Deno.readDirSync(from)) {
    if (skip(entry.name)) continue;
    const src = `${from}/${entry.name}`;
    if (entry.isDirectory) copyTree(src, `${to}/${entry.name}`, skip);
    else if (entry.isSymlink) Deno.symlinkSync(Deno.readLinkSync(src), `${to}/${entry.name}`);
    else if (entry.isFile) Deno.copyFileSync(src, `${to}/${entry.name}`);
  }
}

/** Everything that goes into the image, and the hash that names it. */
async function imageInputs() {
  const deno = Deno.realPathSync(Deno.execPath());
  const python = hostPython();
  const arbiterBin = Deno.env.get(ARBITER_BIN_ENV);
  const files = await checkoutFiles();
  const hash = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(JSON.stringify([
        LAUNCHER,
        CONTAINERFILE,
        deno,
        Deno.statSync(deno).size,
        python ?? "",
        arbiterBin ? encodeHex(await digestFile(arbiterBin)) : "",
        await Promise.all(
          files.map(async (f) => [f, encodeHex(await digestFile(`${REPO_ROOT}/${f}`))]),
        ),
      ])),
    ),
  );
  return { deno, python, arbiterBin, files, tag: encodeHex(hash).slice(0, 16) };
}

async function digestFile(path: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path)));
}

/**
 * The test image (see the module notes), built unless podman already has it.
 * @returns its name with tag, e.g. `localhost/arbiter-test:0123456789abcdef`
 */
export async function testImage(): Promise<string> {
  const inputs = await imageInputs();
  const image = `${IMAGE_NAME}:${inputs.tag}`;
  if ((await podman(["image", "exists", image])).code === 0) return image;
  const context = await Deno.makeTempDir({ prefix: "arbiter-image-" });
  try {
    const root = `${context}/rootfs`;
    const programs = [inputs.deno, "/bin/sh", ...(inputs.python ? [inputs.python] : [])];
    place(root, inputs.deno, "/usr/local/bin/deno", 0o755);
    place(root, "/bin/sh", "/bin/sh", 0o755);
    for (const lib of await libraries(programs)) place(root, lib, lib);
    if (inputs.python) {
      place(root, inputs.python, "/usr/bin/python3", 0o755);
      const lib = `/usr/lib/${inputs.python.split("/").pop()}`;
      copyTree(lib, `${root}${lib}`, (n) => n === "test" || n === "idlelib" || n === "tkinter");
    }
    for (const f of inputs.files) place(root, `${REPO_ROOT}/${f}`, `/opt/arbiter/${f}`);
    copyTree(`${hostDenoDir()}/npm`, `${root}/opt/deno-dir/npm`, () => false);
    if (inputs.arbiterBin) place(root, inputs.arbiterBin, "/usr/local/bin/arbiter", 0o755);
    else {
      Deno.writeTextFileSync(`${root}/usr/local/bin/arbiter`, LAUNCHER, { mode: 0o755 });
    }
    Deno.mkdirSync(`${root}/etc`, { recursive: true });
    Deno.writeTextFileSync(
      `${root}/etc/passwd`,
      "root:x:0:0:root:/root:/sbin/nologin\n" +
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" +
        "app:x:10001:10001:app:/nonexistent:/sbin/nologin\n",
    );
    Deno.writeTextFileSync(`${root}/etc/group`, "root:x:0:\nnonroot:x:65532:\napp:x:10001:\n");
    Deno.mkdirSync(`${root}/app`);
    Deno.mkdirSync(`${root}/tmp`);
    Deno.chmodSync(`${root}/tmp`, 0o1777);
    Deno.writeTextFileSync(`${context}/Containerfile`, CONTAINERFILE);
    const built = await podman(
      ["build", ...ULIMITS, "--network", "none", "-t", image, "-f", "Containerfile", "."],
      context,
    );
    if (built.code !== 0) throw new Error(`podman build failed:\n${built.stderr}`);
  } finally {
    await Deno.remove(context, { recursive: true });
  }
  await removeOtherTags(IMAGE_NAME, image);
  return image;
}

/** Removes the images of `name` other than `keep`, so a machine keeps one. */
export async function removeOtherTags(name: string, keep: string): Promise<void> {
  const list = await podman(["images", "--format", "{{.Repository}}:{{.Tag}}", name]);
  for (const other of list.stdout.split("\n").map((l) => l.trim())) {
    if (other && other !== keep && other.startsWith(`${name}:`)) {
      await podman(["rmi", "--force", other]);
    }
  }
}

/** A container name no other run uses. */
export function containerName(what: string): string {
  return `arbiter-test-${what}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Removes a container whatever its state (the end of every container test). */
export async function removeContainer(name: string): Promise<void> {
  await podman(["rm", "--force", "--time", "0", name]);
}
