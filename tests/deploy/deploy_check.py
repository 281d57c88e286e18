#!/usr/bin/python3
"""Checks deploy/ without Docker or a cluster: the compose file, the Kubernetes
manifests and the image recipe are valid, and agree with each other, with the
stack file (deploy/llmesh.yaml), with the local launcher and with the options
the built binaries accept.

  deploy_check.py --source-dir REPO --bin-dir BUILD/bin

1. docker-compose config (Debian's docker-compose v1 validates offline);
   without the binary, a YAML parse, said so.
2. kubectl kustomize deploy (offline) when kubectl is present, else the
   manifests listed in deploy/k8s/kustomization.yaml parsed one by one; then
   structural checks (image, grpc probes, resources, Service ports that exist,
   namespace-agnostic). `kubectl apply --dry-run=client` needs a cluster's API
   discovery, so it runs only when a kubeconfig is present.
3. Cross-checks: the same five binaries in compose, k8s and the launcher; the
   ports of deploy/llmesh.yaml's `listen` values everywhere; every config key
   set through LLMESH_<SECTION>_<KEY> or --flags is an option of that binary
   (from `BIN --help`), the flags `llmesh up` passes included; every key of
   llmesh.yaml's `stack` section is one the launcher reads; `llmesh --help`
   lists the local commands deploy/README.md documents (up, scale, restart, ps).
4. Image: one package list per stage, read from scripts/, built with
   scripts/setup.sh; every shared library the built binaries link comes from
   scripts/packages-runtime.txt (or its dependencies).
Exit status 0 when every check passes; each failure is printed.
"""
import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

SECTIONS = {  # config section -> binary
    "tokenizer": "llmesh-tokenizer",
    "engine": "llmesh-engine",
    "rag": "llmesh-rag",
    "agent": "llmesh-agent",
    "gateway": "llmesh-gateway",
}
GATEWAY_HTTP_PORT_DEFAULT = 8080

# Options a manifest may set before its binary accepts them (a feature being
# added in parallel), e.g. {"gateway": {"workers_dns"}}. Reported as warnings;
# --strict makes them errors. Remove an entry once its binary lists the option.
PENDING = {}

# One-shot compose services that run before the stack (no llmesh binary, no ports).
COMPOSE_HELPERS = {"cluster-token"}

# Service names as addresses (compose service names, k8s Service names) -> section.
ADDRESS_NAMES = {"tokenizer": "tokenizer", "engine": "engine", "engine-headless": "engine",
                 "rag": "rag", "agent": "agent", "gateway": "gateway"}

errors = []
warnings = []


def fail(msg):
    errors.append(msg)
    print("FAIL: " + msg)


def warn(msg):
    warnings.append(msg)
    print("WARN: " + msg)


def note(msg):
    print("  " + msg)


def port_of(addr):
    m = re.fullmatch(r"(.*):(\d+)", str(addr).strip())
    return (m.group(1), int(m.group(2))) if m else (None, None)


# ----------------------------------------------------------------- inputs

def load_stack(src):
    with open(os.path.join(src, "deploy", "llmesh.yaml")) as f:
        stack = yaml.safe_load(f)
    ports = {}
    for sec in SECTIONS:
        listen = (stack.get(sec) or {}).get("listen")
        host, port = port_of(listen) if listen else (None, None)
        if not port:
            fail(f"deploy/llmesh.yaml: {sec}.listen missing or not host:port ({listen!r})")
            continue
        ports[sec] = port
    http = (stack.get("gateway") or {}).get("http_listen")
    ports["gateway_http"] = port_of(http)[1] if http else GATEWAY_HTTP_PORT_DEFAULT
    return stack, ports


def binary_options(bin_dir):
    """section -> set of option names (snake_case) from `BIN --help`."""
    opts = {}
    for sec, name in SECTIONS.items():
        path = os.path.join(bin_dir, name)
        if not os.access(path, os.X_OK):
            fail(f"{path} missing: build the service binaries first")
            continue
        p = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
        found = set()
        for line in (p.stdout + p.stderr).splitlines():
            m = re.match(r"\s+--([a-z0-9][a-z0-9-]*)\b", line)
            if m:
                found.add(m.group(1).replace("-", "_"))
        if "listen" not in found:
            fail(f"`{name} --help` lists no --listen option; cannot read its options:\n{p.stdout}{p.stderr}")
        opts[sec] = found
    cli = os.path.join(bin_dir, "llmesh")
    if os.access(cli, os.X_OK):
        p = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=30)
        if not re.search(r"^\s+health\b", p.stdout, re.M):
            fail("`llmesh --help` lists no `health` subcommand (the containers' health check)")
        for sub in ("up", "scale", "restart", "ps"):  # deploy/README.md's local commands
            if not re.search(r"^\s+" + sub + r"\b", p.stdout, re.M):
                fail(f"`llmesh --help` lists no `{sub}` subcommand (deploy/README.md documents it)")
    else:
        fail(f"{cli} missing (the image's health check runs `llmesh health`)")
    return opts


def check_key(where, sec, key, opts):
    if sec not in opts:
        return
    if key in opts[sec]:
        return
    if key in PENDING.get(sec, set()):
        (fail if ARGS.strict else warn)(
            f"{where}: {SECTIONS[sec]} does not accept `{key}` yet (pending; see PENDING in {os.path.basename(__file__)})")
    else:
        fail(f"{where}: {SECTIONS[sec]} has no option `{key}` (from `{SECTIONS[sec]} --help`: {sorted(opts[sec])})")


def check_addresses(where, values, ports):
    """Every service address (`name:port`) in values uses that service's port."""
    for v in values:
        for name, port in re.findall(r"(?<![\w.-])([a-z][a-z-]*):(\d+)\b", str(v)):
            if name in ADDRESS_NAMES and int(port) != ports.get(ADDRESS_NAMES[name]):
                fail(f"{where}: {name}:{port} but {ADDRESS_NAMES[name]}.listen's port is "
                     f"{ports.get(ADDRESS_NAMES[name])}")


def check_env(where, sec, env, opts, ports):
    """env: dict name -> value. Checks keys and the listen port."""
    prefix = "LLMESH_" + sec.upper() + "_"
    for name, value in env.items():
        if not name.startswith("LLMESH_"):
            continue
        if name == "LLMESH_CONFIG":
            if value != "/etc/llmesh/llmesh.yaml":
                fail(f"{where}: LLMESH_CONFIG is {value!r}, expected /etc/llmesh/llmesh.yaml")
            continue
        if not name.startswith(prefix):
            fail(f"{where}: {name} is not read by {SECTIONS[sec]} (its variables start with {prefix})")
            continue
        check_key(where, sec, name[len(prefix):].lower(), opts)
    check_addresses(where, env.values(), ports)
    listen = env.get(prefix + "LISTEN")
    if listen is None:
        fail(f"{where}: no {prefix}LISTEN (the stack file's 127.0.0.1 is unreachable from other containers)")
    else:
        host, port = port_of(listen)
        if host != "0.0.0.0":
            fail(f"{where}: {prefix}LISTEN={listen}: must listen on 0.0.0.0 inside the container")
        if port != ports.get(sec):
            fail(f"{where}: {prefix}LISTEN port {port} != {sec}.listen port {ports.get(sec)} in deploy/llmesh.yaml")
    if sec == "gateway":
        http = env.get(prefix + "HTTP_LISTEN")
        if http is not None and port_of(http)[1] != ports["gateway_http"]:
            fail(f"{where}: {prefix}HTTP_LISTEN port != {ports['gateway_http']}")


def command_binary_and_flags(words):
    """The llmesh binary a command runs and the --flags it passes (a `sh -c`
    string is split too)."""
    if len(words) >= 3 and os.path.basename(words[0]) in ("sh", "bash") and words[1] == "-c":
        words = shlex.split(words[2])
    binary, flags = None, []
    for w in words:
        b = os.path.basename(w)
        if binary is None and re.fullmatch(r"llmesh(-[a-z]+)?", b):
            binary = b
        elif binary is not None and w.startswith("--"):
            flags.append(w[2:].split("=", 1)[0].replace("-", "_"))
    return binary, flags


def env_dict(env):
    if env is None:
        return {}
    if isinstance(env, dict):
        return {k: ("" if v is None else str(v)) for k, v in env.items()}
    out = {}
    for item in env:
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


# ---------------------------------------------------------------- compose

def check_compose(src, opts, ports):
    print("== docker compose (deploy/docker-compose.yml)")
    path = os.path.join(src, "deploy", "docker-compose.yml")
    exe = shutil.which("docker-compose")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMESH_")}
    if exe:
        # An empty --env-file: a developer's deploy/.env must not change the result.
        empty = tempfile.NamedTemporaryFile("w", suffix=".env")
        env = dict(base_env, LLMESH_API_KEYS="ci-dummy-key")
        p = subprocess.run([exe, "--env-file", empty.name, "-f", path, "config"],
                           capture_output=True, text=True, env=env, timeout=120)
        if p.returncode != 0:
            fail(f"docker-compose config failed:\n{p.stderr}")
            return
        note("docker-compose config: valid")
        doc = yaml.safe_load(p.stdout)
        # Secure by default: no keys, no stack.
        p2 = subprocess.run([exe, "--env-file", empty.name, "-f", path, "config", "-q"],
                            capture_output=True, text=True, env=base_env, timeout=120)
        if p2.returncode == 0:
            fail("docker-compose config succeeds without LLMESH_API_KEYS: the published gateway would run without keys")
        else:
            note("refuses to run without LLMESH_API_KEYS: ok")
    else:
        note("docker-compose not installed (Debian package docker-compose): YAML parse only, no schema validation")
        with open(path) as f:
            doc = yaml.safe_load(f)
    services = doc.get("services") or {}
    if set(services) - COMPOSE_HELPERS != set(SECTIONS):
        fail(f"compose services {sorted(set(services) - COMPOSE_HELPERS)} != {sorted(SECTIONS)}")
    for name in COMPOSE_HELPERS & set(services):
        if services[name].get("ports"):
            fail(f"compose service {name}: a one-shot helper publishes ports")
    images = {str(s.get("image")) for s in services.values()}
    if len(images) != 1:
        fail(f"compose: services use different images {sorted(images)}; expected one image for all")
    for sec, svc in services.items():
        if sec not in SECTIONS:
            continue
        where = f"compose service {sec}"
        cmd = svc.get("command")
        words = shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])
        binary, flags = command_binary_and_flags(words)
        if binary != SECTIONS[sec]:
            fail(f"{where}: runs {binary!r}, expected {SECTIONS[sec]}")
        for fl in flags:
            check_key(f"{where} command", sec, fl, opts)
        check_addresses(f"{where} command", words, ports)
        env = env_dict(svc.get("environment"))
        check_env(where, sec, env, opts, ports)
        if not any(k.startswith(f"LLMESH_{sec.upper()}_CLUSTER_TOKEN") for k in env):
            fail(f"{where}: no cluster token (LLMESH_{sec.upper()}_CLUSTER_TOKEN_FILE): internal RPCs would be open")
        port = ports.get(sec)
        hc = svc.get("healthcheck") or {}
        test = hc.get("test")
        test = shlex.split(test) if isinstance(test, str) else list(test or [])
        if test[:1] in (["CMD"], ["CMD-SHELL"]):
            test = test[1:]
        if test != ["llmesh", "health", f"127.0.0.1:{port}"]:
            fail(f"{where}: healthcheck {test} != ['llmesh', 'health', '127.0.0.1:{port}']")
        published = []
        for p in svc.get("ports") or []:
            if isinstance(p, dict):
                published.append(int(p.get("target")))
            else:
                published.append(int(str(p).split(":")[-1].split("/")[0]))
        expose = {int(str(e).split("/")[0]) for e in svc.get("expose") or []}
        if port not in expose | set(published):
            fail(f"{where}: does not expose {port}")
        if sec == "gateway":
            want = {ports["gateway"], ports["gateway_http"]}
            if set(published) != want:
                fail(f"{where}: publishes {sorted(published)}, expected {sorted(want)}")
        elif published:
            fail(f"{where}: publishes ports {published}; only the gateway is published")
        vols = []
        for v in svc.get("volumes") or []:
            if isinstance(v, dict):
                vols.append((str(v.get("source", "")), str(v.get("target", "")), bool(v.get("read_only"))))
            else:
                # SOURCE:TARGET[:MODE]; SOURCE may hold ${VAR:-default} when not interpolated.
                m = re.fullmatch(r"(?:(.*):)?(/[^:]*)(?::([a-z,]+))?", str(v))
                if m:
                    vols.append((m.group(1) or "", m.group(2), "ro" in (m.group(3) or "").split(",")))
        cfg = [v for v in vols if v[1] == "/etc/llmesh/llmesh.yaml"]
        if not cfg or not cfg[0][0].endswith("llmesh.yaml") or not cfg[0][2]:
            fail(f"{where}: deploy/llmesh.yaml is not mounted read-only at /etc/llmesh/llmesh.yaml")
        models = [v for v in vols if v[1] == "/models"]
        if sec in ("engine", "tokenizer"):
            if not models or not models[0][2]:
                fail(f"{where}: models not mounted read-only at /models")
            if env.get(f"LLMESH_{sec.upper()}_MODEL_DIR") != "/models":
                fail(f"{where}: LLMESH_{sec.upper()}_MODEL_DIR is not /models")
        if models and not models[0][2]:
            fail(f"{where}: /models must be read-only")
    engine = services.get("engine") or {}
    replicas = (engine.get("deploy") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 1:
        fail("compose engine: no deploy.replicas")
    cmd = engine.get("command")
    words = shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])
    _, flags = command_binary_and_flags(words)
    if "gateway" not in flags or "advertise" not in flags:
        fail("compose engine: does not self-register (--gateway, --advertise): the gateway would not find it")
    gw_env = env_dict((services.get("gateway") or {}).get("environment"))
    if not any("API_KEYS" in k for k in gw_env):
        fail("compose gateway: API keys are not passed through the environment")


# -------------------------------------------------------------------- k8s

def k8s_documents(src):
    """Rendered manifests: kubectl kustomize when available, else a parse."""
    deploy = os.path.join(src, "deploy")
    with open(os.path.join(deploy, "k8s", "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    listed = set(kust.get("resources") or [])
    on_disk = {os.path.basename(p) for p in glob.glob(os.path.join(deploy, "k8s", "*.yaml"))} - {"kustomization.yaml"}
    if on_disk - listed:
        fail(f"deploy/k8s/kustomization.yaml does not list {sorted(on_disk - listed)}")
    for r in listed:
        if not os.path.exists(os.path.join(deploy, "k8s", r)):
            fail(f"deploy/k8s/kustomization.yaml lists missing {r}")
    with open(os.path.join(deploy, "kustomization.yaml")) as f:
        root = yaml.safe_load(f)
    gens = {g["name"]: g.get("files") or [] for g in root.get("configMapGenerator") or []}
    if gens.get("llmesh-config") != ["llmesh.yaml"]:
        fail("deploy/kustomization.yaml: the llmesh-config ConfigMap is not generated from deploy/llmesh.yaml")

    kubectl = shutil.which("kubectl")
    if kubectl:
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "deploy")
            shutil.copytree(deploy, copy,
                            ignore=shutil.ignore_patterns("models", ".env", "api-keys.env", "cluster-token.env"))
            with open(os.path.join(copy, "k8s", "api-keys.env"), "w") as f:
                f.write("api_keys=ci-dummy-key\n")
            with open(os.path.join(copy, "k8s", "cluster-token.env"), "w") as f:
                f.write("cluster_token=" + "0" * 64 + "\n")
            p = subprocess.run([kubectl, "kustomize", copy], capture_output=True, text=True, timeout=120)
            if p.returncode != 0:
                fail(f"kubectl kustomize deploy failed:\n{p.stderr}")
                return []
            note("kubectl kustomize deploy: builds")
            docs = [d for d in yaml.safe_load_all(p.stdout) if d]
            kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
            if os.path.exists(kubeconfig.split(os.pathsep)[0]):
                out = os.path.join(tmp, "all.yaml")
                with open(out, "w") as f:
                    f.write(p.stdout)
                p = subprocess.run([kubectl, "apply", "--dry-run=client", "--validate=false", "-f", out],
                                   capture_output=True, text=True, timeout=120)
                if p.returncode != 0:
                    fail(f"kubectl apply --dry-run=client failed:\n{p.stderr}")
                else:
                    note("kubectl apply --dry-run=client: ok")
            else:
                note("no kubeconfig: kubectl apply --dry-run=client skipped (it needs a cluster's API discovery)")
        return docs
    note("kubectl not installed (not in Debian bookworm): manifests parsed one by one, generators emulated")
    docs = []
    for r in sorted(listed):
        with open(os.path.join(deploy, "k8s", r)) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    with open(os.path.join(deploy, "llmesh.yaml")) as f:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "llmesh-config"},
                     "data": {"llmesh.yaml": f.read()}})
    for g in kust.get("secretGenerator") or []:
        docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": g["name"]},
                     "data": {"api_keys": ""}})
    return docs


def base_name(name, docs_by_kind, kind):
    """A generated object's name carries a hash suffix; map back."""
    for n in docs_by_kind.get(kind, {}):
        if n == name or re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", n):
            return n
    return None


def check_k8s(src, opts, ports):
    print("== Kubernetes (deploy/kustomization.yaml, deploy/k8s/)")
    docs = k8s_documents(src)
    if not docs:
        fail("no Kubernetes objects")
        return
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), {})[d["metadata"]["name"]] = d
        if "namespace" in d.get("metadata", {}):
            fail(f"{d['kind']}/{d['metadata']['name']}: sets a namespace; manifests must be namespace-agnostic")
    text = yaml.safe_dump_all(docs)
    if ".svc.cluster.local" in text or ".svc:" in text:
        fail("manifests name a namespace-qualified address (.svc...): keep addresses namespace-relative")

    cm = base_name("llmesh-config", by_kind, "ConfigMap")
    if not cm:
        fail("no llmesh-config ConfigMap")
    else:
        with open(os.path.join(src, "deploy", "llmesh.yaml")) as f:
            if by_kind["ConfigMap"][cm].get("data", {}).get("llmesh.yaml") != f.read():
                fail("ConfigMap llmesh-config's llmesh.yaml differs from deploy/llmesh.yaml")

    deployments = by_kind.get("Deployment", {})
    if set(deployments) != set(SECTIONS):
        fail(f"Deployments {sorted(deployments)} != {sorted(SECTIONS)}")
    pvcs = by_kind.get("PersistentVolumeClaim", {})
    for name, dep in deployments.items():
        sec = name if name in SECTIONS else None
        where = f"Deployment/{name}"
        pod = dep["spec"]["template"]["spec"]
        labels = dep["spec"]["template"]["metadata"].get("labels", {})
        sel = dep["spec"]["selector"].get("matchLabels", {})
        if any(labels.get(k) != v for k, v in sel.items()):
            fail(f"{where}: selector {sel} does not match its pod labels {labels}")
        psc = pod.get("securityContext") or {}
        if not psc.get("runAsNonRoot"):
            fail(f"{where}: runAsNonRoot is not set")
        vols = {v["name"]: v for v in pod.get("volumes") or []}
        for c in pod.get("containers") or []:
            cw = f"{where} container {c.get('name')}"
            if not c.get("image"):
                fail(f"{cw}: no image")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        fail(f"{cw}: no resources.{kind}.{r}")
            cports = {p["containerPort"] for p in c.get("ports") or []}
            for probe in ("readinessProbe", "livenessProbe"):
                pr = c.get(probe)
                if not pr:
                    fail(f"{cw}: no {probe}")
                elif "grpc" not in pr:
                    fail(f"{cw}: {probe} is not a grpc (grpc.health.v1) probe")
                elif sec and pr["grpc"].get("port") != ports.get(sec):
                    fail(f"{cw}: {probe} port {pr['grpc'].get('port')} != {sec}.listen port {ports.get(sec)}")
            if sec and ports.get(sec) not in cports:
                fail(f"{cw}: containerPort {ports.get(sec)} ({sec}.listen) not declared")
            if sec == "gateway" and ports["gateway_http"] not in cports:
                fail(f"{cw}: containerPort {ports['gateway_http']} (HTTP) not declared")
            if c.get("command"):
                fail(f"{cw}: sets `command`, which replaces the image's tini entrypoint; use `args`")
            binary, flags = command_binary_and_flags(list(c.get("args") or []))
            if sec and binary != SECTIONS[sec]:
                fail(f"{cw}: runs {binary!r}, expected {SECTIONS[sec]}")
            env = {}
            for e in c.get("env") or []:
                env[e["name"]] = e.get("value", "<valueFrom>")
            if sec:
                for fl in flags:
                    check_key(f"{cw} args", sec, fl, opts)
                check_addresses(f"{cw} args", c.get("args") or [], ports)
                check_env(cw, sec, env, opts, ports)
                if f"LLMESH_{sec.upper()}_CLUSTER_TOKEN" not in env:
                    fail(f"{cw}: no LLMESH_{sec.upper()}_CLUSTER_TOKEN from a Secret: internal RPCs would be open")
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
            m = mounts.get("/etc/llmesh")
            if not m or not vols.get(m["name"], {}).get("configMap") or not m.get("readOnly"):
                fail(f"{cw}: the llmesh-config ConfigMap is not mounted read-only at /etc/llmesh")
            if sec in ("engine", "tokenizer"):
                m = mounts.get("/models")
                if not m or not m.get("readOnly"):
                    fail(f"{cw}: models not mounted read-only at /models")
                elif f"LLMESH_{sec.upper()}_MODEL_DIR" not in env or env[f"LLMESH_{sec.upper()}_MODEL_DIR"] != "/models":
                    fail(f"{cw}: LLMESH_{sec.upper()}_MODEL_DIR is not /models")
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not base_name(ref["name"], by_kind, "Secret"):
                    fail(f"{cw}: env {e['name']} refers to missing Secret {ref['name']}")
                ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and not base_name(ref["name"], by_kind, "ConfigMap"):
                    fail(f"{cw}: env {e['name']} refers to missing ConfigMap {ref['name']}")
        for v in vols.values():
            if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in pvcs:
                fail(f"{where}: volume {v['name']} claims missing PVC {v['persistentVolumeClaim']['claimName']}")
            if "configMap" in v and not base_name(v["configMap"]["name"], by_kind, "ConfigMap"):
                fail(f"{where}: volume {v['name']} refers to missing ConfigMap {v['configMap']['name']}")
            if v["name"] == "models" and not (v.get("persistentVolumeClaim") or {}).get("readOnly", "hostPath" in v):
                fail(f"{where}: the models volume is not read-only")

    # Services: a selector that matches a Deployment, and target ports it declares.
    services = by_kind.get("Service", {})
    for name, svc in services.items():
        sel = svc["spec"].get("selector") or {}
        targets = [d for d in deployments.values()
                   if sel and all(d["spec"]["template"]["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
        if not targets:
            fail(f"Service/{name}: selector {sel} matches no Deployment")
            continue
        for d in targets:
            cs = d["spec"]["template"]["spec"]["containers"]
            names = {p.get("name") for c in cs for p in c.get("ports") or []}
            numbers = {p["containerPort"] for c in cs for p in c.get("ports") or []}
            for p in svc["spec"].get("ports") or []:
                t = p.get("targetPort", p.get("port"))
                if (isinstance(t, int) and t not in numbers) or (isinstance(t, str) and t not in names):
                    fail(f"Service/{name}: targetPort {t!r} is no container port of Deployment/{d['metadata']['name']}")
    for sec in ("tokenizer", "rag", "agent", "gateway"):
        svc = services.get(sec)
        if not svc or ports.get(sec) not in [p["port"] for p in svc["spec"]["ports"]]:
            fail(f"no Service/{sec} on port {ports.get(sec)}")
    head = services.get("engine-headless")
    if not head or head["spec"].get("clusterIP") != "None":
        fail("no headless Service/engine-headless (clusterIP: None) for the gateway to discover engines")
    elif ports["engine"] not in [p["port"] for p in head["spec"]["ports"]]:
        fail(f"Service/engine-headless: no port {ports['engine']}")
    gw = deployments.get("gateway")
    if gw:
        env = {e["name"]: e.get("value") for e in gw["spec"]["template"]["spec"]["containers"][0].get("env") or []}
        want = f"engine-headless:{ports['engine']}"
        if env.get("LLMESH_GATEWAY_WORKERS_DNS") != want:
            fail(f"gateway: LLMESH_GATEWAY_WORKERS_DNS is {env.get('LLMESH_GATEWAY_WORKERS_DNS')!r}, expected {want}")
        if not any("API_KEYS" in k for k in env):
            fail("gateway: API keys are not passed from a Secret")
    hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", {}).values()
            if h["spec"]["scaleTargetRef"].get("name") == "engine" and h["spec"]["scaleTargetRef"].get("kind") == "Deployment"]
    if not hpas:
        fail("no HorizontalPodAutoscaler for Deployment/engine")
    elif not any(m.get("resource", {}).get("name") == "cpu" for m in hpas[0]["spec"].get("metrics") or []):
        fail("the engine HorizontalPodAutoscaler does not scale on CPU")
    if deployments.get("engine", {}).get("spec", {}).get("replicas") is not None:
        fail("Deployment/engine sets replicas, which fights its HorizontalPodAutoscaler")
    note(f"{len(docs)} objects: " + ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items())))


# --------------------------------------------------------------- launcher

def check_launcher(src, opts, stack):
    print("== launcher (services/cli/stack_config.cc, stack_runner.cc)")
    cli = os.path.join(src, "services", "cli")
    with open(os.path.join(cli, "stack_config.cc")) as f:
        config_src = f.read()
    found = set(re.findall(r'"(llmesh-[a-z]+)"', config_src))
    if found != set(SECTIONS.values()):
        fail(f"the launcher starts {sorted(found)}; compose and k8s run {sorted(SECTIONS.values())}")
    else:
        note("same binaries; the launcher reads its ports from deploy/llmesh.yaml")
    # Every key of llmesh.yaml's `stack` section is one the launcher reads.
    read = set(re.findall(r'Scalar\(root, "stack", "([a-z_]+)"', config_src))
    for key in sorted((stack.get("stack") or {}).keys()):
        if key not in read:
            fail(f"deploy/llmesh.yaml: stack.{key} is not read by the launcher (it reads {sorted(read)})")
    # The flags the launcher passes: common ones to every service, then per section.
    with open(os.path.join(cli, "stack_runner.cc")) as f:
        runner = f.read()
    m = re.search(r"absl::Status StackRunner::Start\(const StackProcess& p\) \{(.*?)\n\}", runner, re.S)
    if not m:
        fail("services/cli/stack_runner.cc: no StackRunner::Start to read the launcher's flags from")
        return
    body = m.group(1)
    parts = re.split(r'p\.section == "([a-z]+)"', body)
    common = set(re.findall(r'"--([a-z-]+)"', parts[0]))
    passed = {sec: set(common) for sec in SECTIONS}
    for sec, chunk in zip(parts[1::2], parts[2::2]):
        if sec in passed:
            passed[sec] |= set(re.findall(r'"--([a-z-]+)"', chunk))
    n = 0
    for sec, flags in sorted(passed.items()):
        for flag in sorted(flags):
            check_key("services/cli/stack_runner.cc (llmesh up)", sec, flag.replace("-", "_"), opts)
            n += 1
    note(f"{n} flags the launcher passes are options of their binaries")


# ------------------------------------------------------------------ image

def package_list(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]


def check_image(src, bin_dir):
    print("== image (deploy/Dockerfile)")
    with open(os.path.join(src, "deploy", "Dockerfile")) as f:
        df = f.read()
    logical = re.sub(r"\\\n", " ", df)
    lines = [l.strip() for l in logical.splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    if len(froms) < 2:
        fail("Dockerfile: not multi-stage")
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", logical, re.M))
    for l in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), l.split()[1])
        if not image.startswith("debian:bookworm"):
            fail(f"Dockerfile: stage from {image}, expected debian:bookworm*")
    runs = " ".join(l for l in lines if l.upper().startswith("RUN "))
    if re.search(r"apt-get\s+install", runs):
        fail("Dockerfile: runs apt-get install itself; packages come from scripts/packages*.txt via scripts/setup.sh")
    if re.search(r"\b(curl|wget|git\s+clone|pip3?\s+install)\b", runs):
        fail("Dockerfile: fetches something from the network besides Debian's apt")
    if runs.count("setup.sh") < 2:
        fail("Dockerfile: both stages must install packages with scripts/setup.sh")
    for needle, why in [("scripts/packages.txt", "build stage package list"),
                        ("scripts/packages-runtime.txt", "runtime package list"),
                        ("-DLLMESH_BUILD_TESTS=OFF", "tests off"),
                        ("-DLLMESH_BUILD_BENCH=OFF", "benchmarks off"),
                        ("-G Ninja", "Ninja"),
                        ("/usr/local/bin/", "binaries in /usr/local/bin"),
                        ("/etc/llmesh/llmesh.yaml", "stack config at /etc/llmesh/llmesh.yaml")]:
        if needle not in logical:
            fail(f"Dockerfile: no {needle} ({why})")
    users = re.findall(r"^USER\s+(\S+)", logical, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        fail("Dockerfile: the runtime stage does not switch to a non-root USER")
    elif not users[-1].split(":")[0].isdigit():
        fail("Dockerfile: USER should be numeric so Kubernetes runAsNonRoot can verify it")
    if "docker-compose" not in package_list(os.path.join(src, "scripts", "packages.txt")):
        fail("scripts/packages.txt lacks docker-compose (this check's validator)")

    runtime = package_list(os.path.join(src, "scripts", "packages-runtime.txt"))
    if not shutil.which("dpkg") or not shutil.which("apt-cache"):
        note("no dpkg/apt-cache: runtime library coverage not checked")
        return
    p = subprocess.run(["apt-cache", "policy"] + runtime, capture_output=True, text=True)
    for pkg in runtime:
        m = re.search(r"^" + re.escape(pkg) + r":\n(?:\s+.*\n)*?\s+Candidate: (\S+)", p.stdout, re.M)
        if not m or m.group(1) == "(none)":
            fail(f"scripts/packages-runtime.txt: {pkg} is not a package Debian offers here")
    p = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + runtime,
                       capture_output=True, text=True)
    closure = set(runtime)
    for line in p.stdout.splitlines():
        m = re.match(r"\s*(?:\|?(?:Pre)?Depends: )?<?([a-z0-9][a-z0-9.+-]+)>?$", line)
        if m:
            closure.add(m.group(1).split(":")[0])
    libs = set()
    for b in sorted(glob.glob(os.path.join(bin_dir, "llmesh*"))):
        p = subprocess.run(["ldd", b], capture_output=True, text=True)
        for line in p.stdout.splitlines():
            if "not found" in line:
                fail(f"ldd {os.path.basename(b)}: {line.strip()}")
            m = re.search(r"=>\s+(/\S+)", line)
            if m:
                libs.add(m.group(1))
    # One dpkg -S for every path (and its target): dpkg is slow to start.
    paths = sorted(libs | {os.path.realpath(l) for l in libs})
    q = subprocess.run(["dpkg", "-S"] + paths, capture_output=True, text=True) if paths else None
    owner = {}
    for line in (q.stdout if q else "").splitlines():
        pkgs, _, path = line.partition(": ")
        owner[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    missing = {}
    for lib in sorted(libs):
        pkg = owner.get(lib) or owner.get(os.path.realpath(lib))
        if pkg is None:
            warn(f"{lib} belongs to no Debian package (a local build?)")
            continue
        # Sanitizer runtimes (./dev asan) are not part of the image.
        if re.match(r"lib(asan|ubsan|lsan|tsan)\d*$|libclang-rt", pkg):
            continue
        if pkg not in closure:
            missing.setdefault(pkg, []).append(os.path.basename(lib))
    for pkg, ls in missing.items():
        fail(f"the binaries link {', '.join(ls)} from {pkg}, which scripts/packages-runtime.txt does not install")
    note(f"{len(libs)} shared libraries of the built binaries; all from scripts/packages-runtime.txt"
         if not missing else "runtime package list incomplete")


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--strict", action="store_true", help="pending options are errors too")
    ARGS = ap.parse_args()
    src = os.path.abspath(ARGS.source_dir)
    stack, ports = load_stack(src)
    print(f"deploy/llmesh.yaml ports: {ports}")
    opts = binary_options(ARGS.bin_dir)
    check_compose(src, opts, ports)
    check_k8s(src, opts, ports)
    check_launcher(src, opts, stack)
    check_image(src, ARGS.bin_dir)
    # A pending option that a binary now accepts: time to drop it from PENDING.
    for sec, keys in PENDING.items():
        for k in sorted(keys & opts.get(sec, set())):
            print(f"NOTE: {SECTIONS[sec]} now accepts `{k}`: remove it from PENDING")
    print(f"\n{len(errors)} failure(s), {len(warnings)} warning(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
