#!/usr/bin/env bash
# ARM smoke test: the package from this checkout on an emulated Raspberry Pi 4 (Cortex-A72) and Pi 5 (Cortex-A76).
#
# Builds (once, then reuses) an arm64 Debian 12 root with mmdebstrap -- Raspberry Pi OS Bookworm 64-bit is Debian
# 12 with Python 3.11 -- installs the checkout into it with firmware_configs/install.sh --no-systemd, and under
# qemu-user with QEMU_CPU=cortex-a72 and cortex-a76 runs `doctor`, `config check` of every CPU profile against
# the packaged bundle, and `listen --file` with default settings, with each CPU profile and with each Edge TPU
# profile without the Edge TPU runtime (the CPU fallback), asserting 5 labelled windows each; then an Edge TPU
# profile with --require-delegate (one error line, exit status 2). The CPUs run side by side. Emulated timings
# are not performance figures.
#
# Needs root (chroot, mounts); installs mmdebstrap, qemu-user-static, binfmt-support and arch-test when missing.
# Environment: AUDEEP_ARM_ROOT (cache directory, default ~/.cache/audeep-edge/arm64-root),
#              AUDEEP_ARM_CPUS (default "cortex-a72 cortex-a76").
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
[ "$(id -u)" -eq 0 ] || exec sudo -E bash "$0" "$@"

ROOT=${AUDEEP_ARM_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/audeep-edge/arm64-root}
CPUS=${AUDEEP_ARM_CPUS:-cortex-a72 cortex-a76}
ROOT_KEY="bookworm arm64 minbase python3,python3-venv,libportaudio2,ca-certificates"  # change it to rebuild
SRC=/opt/audeep-edge-src            # the checkout, copied into the root
VENV=/opt/audeep-edge/venv          # where install.sh puts the package
HOST_CA=/etc/ssl/audeep-host-ca.pem # the host's CA bundle, bound into the root for pip
DEMO=$SRC/audeep_edge/assets/demo-scenes.ogg
WINDOWS=5

say() { printf 'arm_smoke: %s\n' "$*"; }
die() { printf 'arm_smoke: error: %s\n' "$*" >&2; exit 1; }
started=$SECONDS

# -- host tools and binfmt --------------------------------------------------------------------------------
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v arch-test >/dev/null || need+=(arch-test)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
BINFMT=/proc/sys/fs/binfmt_misc
[ -e "$BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$BINFMT" \
    || die "cannot mount binfmt_misc: this machine cannot run arm64 binaries through qemu-user"
[ -e "$BINFMT/qemu-aarch64" ] || update-binfmts --enable qemu-aarch64 \
    || die "cannot register qemu-aarch64 with binfmt_misc"
QEMU=$(sed -n 's/^interpreter //p' "$BINFMT/qemu-aarch64")
grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" || COPY_QEMU=1  # without F the interpreter must exist in the root

# -- the arm64 root (cached) ----------------------------------------------------------------------------
if [ "$(cat "$ROOT/.audeep-root" 2>/dev/null)" != "$ROOT_KEY" ]; then
    say "building the arm64 root in $ROOT (mmdebstrap; several minutes)"
    rm -rf "$ROOT.partial" && mkdir -p "$(dirname "$ROOT")"
    read -r suite arch variant packages <<<"$ROOT_KEY"
    mmdebstrap --quiet --arch="$arch" --variant="$variant" --include="$packages" "$suite" "$ROOT.partial"
    echo "$ROOT_KEY" >"$ROOT.partial/.audeep-root"
    rm -rf "$ROOT" && mv "$ROOT.partial" "$ROOT"
    say "root built after $((SECONDS - started)) s"
else
    say "reusing the arm64 root $ROOT"
fi
[ -z "${COPY_QEMU:-}" ] || { mkdir -p "$ROOT$(dirname "$QEMU")"; cp "$QEMU" "$ROOT$QEMU"; }
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

# -- pip inside the root trusts what the host's pip trusts, and sees its local indexes --------------------
HOST_PY=python3
[ -x .venv/bin/python ] && HOST_PY=.venv/bin/python
pip_settings=$("$HOST_PY" -m pip config list 2>/dev/null || true)
ca=${PIP_CERT:-$(sed -n "s/^global\.cert='\(.*\)'$/\1/p" <<<"$pip_settings")}
ca=${ca:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}
[ -r "$ca" ] || die "the host's CA bundle $ca is unreadable"
# pip.conf for the root: the host's settings (not its environment variables, passed below), our CA bundle
"$HOST_PY" -c '
import re, sys
sections = {}
for line in sys.stdin:
    match = re.match(r"^([\w-]+)\.([\w-]+)=.(.*).$", line.strip())
    if match:
        sections.setdefault(match[1], {})[match[2]] = match[3]
sections.setdefault("global", {})["cert"] = sys.argv[1]
for section, values in sections.items():
    print(f"[{section}]", *(f"{key} = {value}" for key, value in values.items()), sep="\n")
' "$HOST_CA" <<<"$pip_settings" >"$ROOT/etc/pip.conf"
# local paths those settings and PIP_* name are bound: a wheelhouse, a constraints file, and the directory above
# a file:// index (its pages link to ../../files/...)
local_paths=()
for value in $(sed -n "s/^[^:][^=]*='\(.*\)'$/\1/p" <<<"$pip_settings") $(env | sed -n 's/^PIP_[A-Z_]*=//p'); do
    [[ $value == file:///* ]] && value=$(dirname "${value#file://}")
    [[ $value == /* ]] && [ -e "$value" ] && [ "$value" != "$ca" ] && local_paths+=("$value")
done
pip_env=()
while IFS= read -r line; do pip_env+=("$line"); done < <(env | grep -E '^(PIP_|https?_proxy=|no_proxy=|HTTPS?_PROXY=|NO_PROXY=)' \
    | grep -v -E '^PIP_(CERT|CONFIG_FILE)=')

# -- running a command in the root as a given CPU -------------------------------------------------------
# qemu-user shows the guest the host's /proc/cpuinfo, on which LiteRT's CPU detection crashes: bind a Pi's.
in_root() {  # in_root CPU COMMAND... : run COMMAND in the root under QEMU_CPU=CPU, in a private mount namespace
    local cpu=$1; shift
    local cpuinfo=$REPO/scripts/arm/cpuinfo-$cpu
    [ -r "$cpuinfo" ] || die "no $cpuinfo for QEMU_CPU=$cpu"
    unshare --mount --propagation private -- bash -euc '
        root=$1 cpuinfo=$2 ca=$3 host_ca=$4 paths=$5; shift 5
        mount -t proc proc "$root/proc"
        mount --bind "$cpuinfo" "$root/proc/cpuinfo"
        mount -t sysfs sysfs "$root/sys"
        mount --rbind /dev "$root/dev"
        touch "$root$host_ca" && mount --bind -o ro "$ca" "$root$host_ca"
        for path in $paths; do
            if [ -d "$path" ]; then mkdir -p "$root$path"; else mkdir -p "$(dirname "$root$path")"; touch "$root$path"; fi
            mount --bind -o ro "$path" "$root$path"
        done
        exec chroot "$root" "$@"' _ "$ROOT" "$cpuinfo" "$ca" "$HOST_CA" "${local_paths[*]}" \
        /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        QEMU_CPU="$cpu" PIP_CERT="$HOST_CA" REQUESTS_CA_BUNDLE="$HOST_CA" SSL_CERT_FILE="$HOST_CA" "${pip_env[@]}" \
        "$@"
}

# -- install.sh from the checkout (the default source), up to what needs systemd ---------------------------
say "copying the checkout to $SRC in the root"
rm -rf "$ROOT$SRC" && mkdir -p "$ROOT$SRC"
tar -C "$REPO" -cf - --exclude-vcs --exclude=./.venv --exclude=./build --exclude=./dist --exclude=./runs \
    --exclude=./test-artifacts --exclude=./work --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.pytest_cache . | tar -C "$ROOT$SRC" -xf -
rm -rf "$ROOT/etc/audeep-edge" "$ROOT/var/lib/audeep-edge"  # the venv stays: re-runs upgrade it in place
first_cpu=${CPUS%% *}
t=$SECONDS
in_root "$first_cpu" "$SRC/firmware_configs/install.sh" --profile rpi4 --no-systemd --broker none
say "install.sh under $first_cpu took $((SECONDS - t)) s"

PACKAGED=$(in_root "$first_cpu" "$VENV/bin/python" -c \
    'from audeep_edge.pipeline.assemble import find_bundle; print(find_bundle(None, None).path)')
PACKAGED_INT8=$(dirname "$PACKAGED")/general-fused-int8.bundle  # the default's full-int8 twin (stacked input)
cpu_profiles=() tpu_profiles=()
for profile in firmware_configs/*.toml; do
    if grep -q '^precision *= *"edgetpu"' "$profile"; then tpu_profiles+=("$SRC/$profile")
    else cpu_profiles+=("$SRC/$profile"); fi
done

check_windows() {  # check_windows WHAT FILE: FILE holds $WINDOWS labelled window records
    python3 - "$1" "$2" "$WINDOWS" <<'EOF'
import json, sys
what, path, wanted = sys.argv[1], sys.argv[2], int(sys.argv[3])
records = [json.loads(line) for line in open(path) if line.strip()]
windows = [r for r in records if r.get("topic") == "window"]
labelled = [w for w in windows if w.get("label")]
if len(windows) != wanted or len(labelled) != wanted:
    sys.exit(f"arm_smoke: error: {what}: {len(windows)} windows, {len(labelled)} labelled (wanted {wanted})")
print(f"arm_smoke: {what}: {wanted} labelled windows ({', '.join(str(w['label']) for w in labelled)})")
EOF
}

listen_ok() {  # listen_ok CPU WHAT ARGS...: listen on the demo audio prints $WINDOWS labelled windows
    local cpu=$1 what=$2; shift 2
    in_root "$cpu" "$VENV/bin/audeep-edge" listen --file "$DEMO" --max-windows "$WINDOWS" --jsonl - "$@" \
        >"$out" 2>"$err" || { status=$?; cat "$err" >&2; die "$cpu: listen $what exited with status $status"; }
    check_windows "$cpu: listen $what" "$out"
}
no_broker() {  # no_broker PROFILE: --broker none, or for a profile with the dashboard (which reads MQTT) its own
    # broker setting and a free dashboard port
    if grep -q '^dashboard *= *true' "$ROOT$1"; then echo --dashboard-port 0; else echo --broker none; fi
}

smoke() {  # smoke CPU: every check under QEMU_CPU=CPU (out, err: this CPU's scratch files)
    local cpu=$1 t=$SECONDS status=0
    out=$work/$cpu.out err=$work/$cpu.err
    in_root "$cpu" "$VENV/bin/audeep-edge" doctor >"$out" 2>"$err" || status=$?
    cat "$out"
    [ "$status" -le 1 ] || { cat "$err" >&2; die "$cpu: doctor exited with status $status (0 or 1 expected)"; }
    grep -E '^model +OK' "$out" >/dev/null || die "$cpu: doctor's model check is not OK"
    case $cpu in  # the Pi 4's CPU cannot load CompiledModel (it would abort the process), the Pi 5's can
        cortex-a72) runner=Interpreter ;;
        cortex-a76) runner=CompiledModel ;;
        *) runner="" ;;
    esac
    grep -E "^model +OK +loads on .* $runner," "$out" >/dev/null || die "$cpu: the model does not run on $runner"

    for profile in "${cpu_profiles[@]}"; do
        in_root "$cpu" "$VENV/bin/audeep-edge" config check "$profile" --bundle "$PACKAGED" \
            || die "$cpu: config check $profile failed"
    done

    listen_ok "$cpu" "(default settings)" --broker none
    for profile in "${cpu_profiles[@]}"; do
        # shellcheck disable=SC2046 # two words
        listen_ok "$cpu" "--config $(basename "$profile")" --config "$profile" --bundle "$PACKAGED" $(no_broker "$profile")
    done
    # An Edge TPU profile without libedgetpu: the documented warning, then the CPU (with a CPU bundle) ...
    for profile in "${tpu_profiles[@]}"; do
        # shellcheck disable=SC2046 # two words
        listen_ok "$cpu" "--config $(basename "$profile") without the Edge TPU runtime" --config "$profile" \
            --bundle "$PACKAGED_INT8" --precision int8 $(no_broker "$profile")
        grep -q 'running on the CPU instead' "$err" || die "$cpu: no Edge TPU fallback warning for $profile"
    done
    # ... and with require-delegate one error line and exit status 2
    status=0
    in_root "$cpu" "$VENV/bin/audeep-edge" listen --config "${tpu_profiles[0]}" --file "$DEMO" --bundle "$PACKAGED_INT8" \
        --precision int8 --broker none --max-windows 1 --require-delegate >/dev/null 2>"$err" || status=$?
    [ "$status" -eq 2 ] && [ "$(grep -c '^error: --delegate edgetpu: cannot load libedgetpu' "$err")" -eq 1 ] \
        || { cat "$err" >&2; die "$cpu: --require-delegate without libedgetpu: status $status"; }
    say "$cpu passed in $((SECONDS - t)) s"
}

# The CPUs run side by side (one emulated process each at a time); each one's log is shown when all are done.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pids=()
for cpu in $CPUS; do
    smoke "$cpu" >"$work/$cpu.log" 2>&1 &
    pids+=($!)
done
failed=()
set -- $CPUS
for pid in "${pids[@]}"; do
    say "== QEMU_CPU=$1"
    wait "$pid" || failed+=("$1")
    cat "$work/$1.log"
    shift
done
[ ${#failed[@]} -eq 0 ] || die "failed under ${failed[*]}"
say "passed in $((SECONDS - started)) s (emulated: not performance figures)"
