#!/usr/bin/env bash
# Build the container image and check it for real (a release check: about 5-10 min on 2 cores).
#
#   bash scripts/check_container.sh            # podman (installed from Debian if missing, as root)
#   IMAGE=sentitune:test KEEP=1 bash scripts/check_container.sh
#
# Offline-capable: the base image is made here with debootstrap (Debian bookworm, python3,
# python3-venv) unless BASE_IMAGE names one you have, and packages come from this machine's own pip
# configuration (index-url, extra-index-url, find-links; file:// indexes are mounted read-only
# into the build). Checks: /api/v1/health, one analyze (POSITIVE for a clearly positive text), one 401,
# a non-root user, no pip/compiler in the runtime image, SIGTERM during requests lets them finish.
# Reports image size, seconds to healthy and RSS into benchmarks/RESULTS.md ("Container" section).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/sentitune:check}
BASE_IMAGE=${BASE_IMAGE:-localhost/sentitune-base:bookworm}
PORT=${PORT:-18080}
KEY=check-key-$$
NAME=sentitune-check-$$
PY=${PYTHON:-python3}

need() { command -v "$1" >/dev/null; }
if ! need podman; then
    if [ "$(id -u)" = 0 ] && need apt-get; then
        echo "installing podman and debootstrap from Debian" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
    else
        echo "error: podman is not installed (apt-get install podman debootstrap)" >&2; exit 2
    fi
fi

# Sandboxed machines (this project's among them) have hybrid cgroups, which crun refuses, and forbid
# raising rlimits: RUN steps use chroot isolation, containers run under runc with cgroupfs and
# ulimits no higher than this shell's own.
PODMAN=(podman)
need runc && PODMAN+=(--runtime runc --cgroup-manager cgroupfs)
LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)

# --- base image: Debian bookworm with python3 and venv, made locally ---------------------------
if ! podman image exists "$BASE_IMAGE"; then
    need debootstrap || { echo "error: $BASE_IMAGE is missing and debootstrap is not installed" >&2; exit 2; }
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    echo "making $BASE_IMAGE with debootstrap" >&2
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
        "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import -q --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$root"
    trap - EXIT
fi

# --- package index: whatever this machine's pip is configured with ----------------------------
# `pip config list` merges every config file and PIP_* variable (the environment listed first, as
# it wins); `pip config get` sees one file only.
pipconf() { "$PY" -m pip config list 2>/dev/null | sed -n "s/^\(:env:\|global\)\.$1='\(.*\)'$/\2/p" | head -1; }
INDEX_URL=$(pipconf index-url)
EXTRA_INDEX_URL=$(pipconf extra-index-url | tr '\n' ' ')
FIND_LINKS=$(pipconf find-links | tr '\n' ' ')
mounts=()
CERT=$(pipconf cert)  # a TLS-inspecting proxy's CA, where the machine's pip is set up with one
build_cert=()
[ -n "$CERT" ] && [ -f "$CERT" ] && build_cert=(--volume "$CERT:/run/pip-ca.crt:ro" --build-arg PIP_CERT=/run/pip-ca.crt)
mount_ro() { [ -d "$1" ] && mounts+=(--volume "$1:$1:ro") || true; }
for loc in $INDEX_URL $EXTRA_INDEX_URL; do  # a simple index links to ../../files: mount its parent
    case "$loc" in file://*|/*) mount_ro "$(dirname "${loc#file://}")" ;; esac
done
for loc in $FIND_LINKS; do
    case "$loc" in file://*|/*) mount_ro "${loc#file://}" ;; esac
done

echo "building $IMAGE from $BASE_IMAGE" >&2
build_start=$(date +%s)
podman build --format docker --isolation chroot --network host "${mounts[@]}" "${build_cert[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg PIP_INDEX_URL="$INDEX_URL" --build-arg PIP_EXTRA_INDEX_URL="$EXTRA_INDEX_URL" \
    --build-arg PIP_FIND_LINKS="$FIND_LINKS" --build-arg TORCH_INDEX_URL= \
    -t "$IMAGE" . > /tmp/sentitune-container-build.log 2>&1 \
    || { tail -30 /tmp/sentitune-container-build.log >&2; echo "error: image build failed (log: /tmp/sentitune-container-build.log)" >&2; exit 1; }
build_s=$(( $(date +%s) - build_start ))
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")

# --- the runtime image carries no build tools and runs as non-root -----------------------------
if "${PODMAN[@]}" run --rm --no-healthcheck "${LIMITS[@]}" --entrypoint sh "$IMAGE" -c 'command -v pip || command -v gcc || command -v cc' >/dev/null; then
    echo "FAIL: the runtime image has pip or a compiler" >&2; exit 1
fi
uid=$("${PODMAN[@]}" run --rm --no-healthcheck "${LIMITS[@]}" --entrypoint id "$IMAGE" -u)
[ "$uid" != 0 ] || { echo "FAIL: the image runs as root" >&2; exit 1; }

# --- run it ------------------------------------------------------------------------------------
cleanup() { podman rm -f "$NAME" >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || podman rmi "$IMAGE" >/dev/null 2>&1 || true; }
trap cleanup EXIT
start=$("$PY" -c 'import time; print(time.time())')
"${PODMAN[@]}" run -d --no-healthcheck "${LIMITS[@]}" --name "$NAME" --network host -e PORT="$PORT" -e API_KEY="$KEY" "$IMAGE" >/dev/null

"$PY" - "$PORT" "$KEY" "$NAME" "$start" "$size_bytes" "$build_s" "$uid" <<'EOF'
import concurrent.futures as cf, json, subprocess, sys, time, urllib.error, urllib.request

port, key, name, start, size_bytes, build_s, uid = sys.argv[1:]
base = f"http://127.0.0.1:{port}"


def call(path, body=None, key=key, timeout=60):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json", **({"X-API-Key": key} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        print(subprocess.run(["podman", "logs", "--tail", "20", name], capture_output=True, text=True).stderr, file=sys.stderr)
        sys.exit(1)


deadline = time.time() + 300
status = None
while time.time() < deadline:
    state = subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}", name], capture_output=True, text=True).stdout.strip()
    if state != "running":
        check(False, f"the container is {state or 'gone'} before it became healthy")
    try:
        status, _ = call("/api/v1/health", key=None, timeout=5)
        if status == 200:
            break
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    time.sleep(0.5)
healthy_s = time.time() - float(start)
check(status == 200, f"/api/v1/health is 200 after {healthy_s:.1f} s")
status, body = call("/api/v1/analyze", {"text": "Absolutely wonderful, I love it!"})
check(status == 200 and body.get("predicted_sentiment") == "POSITIVE", f"analyze a clearly positive text: {status} {body.get('predicted_sentiment')}")
status, body = call("/api/v1/analyze", {"text": "fine"}, key="wrong-key")
check(status == 401 and body["error"]["code"] == 401, f"a wrong key gets 401 with a JSON error: {status}")

pid = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", name], capture_output=True, text=True).stdout.strip()
rss_mb = int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0]) / 1024

# SIGTERM while requests are in flight: every one of them must still be answered
# 16 x 8 long texts: under the server's queue limit (256 texts) and the key's hourly limit (1,000)
texts = [f"review {i}: " + "the food was great but the service was slow and the room was cold. " * 12 for i in range(8)]
with cf.ThreadPoolExecutor(16) as pool:
    futures = [pool.submit(call, "/api/v1/analyze/batch", {"texts": texts}) for _ in range(16)]
    time.sleep(0.3)
    subprocess.run(["podman", "kill", "--signal", "TERM", name], check=True, capture_output=True)
    answers = [f.result()[0] for f in futures]
code = subprocess.run(["podman", "wait", name], capture_output=True, text=True).stdout.strip()
check(all(a == 200 for a in answers), f"SIGTERM during 16 batch requests: {answers.count(200)}/16 answered 200, exit {code}")

sys.path[:0] = ["benchmarks", "src"]  # results.py describes the CPU with sentitune.methods.hardware (stdlib only)
from results import markdown_table, write_section

rows = [["image size", f"{int(size_bytes) / 2**20:,.0f} MiB"], ["build (s)", build_s],
        ["start to healthy (s)", f"{healthy_s:.1f}"], ["RSS after warm-up (MiB)", f"{rss_mb:,.0f}"],
        ["user id", uid], ["SIGTERM with 16 requests in flight", f"{answers.count(200)}/16 answered"]]
write_section("container", "Container image (podman, debootstrap bookworm base)", markdown_table(["what", "measured"], rows)
              + "\n\nA release check, not run in CI (the build alone takes minutes).", command="bash scripts/check_container.sh")
print(markdown_table(["what", "measured"], rows))
EOF
