#!/usr/bin/env bash
# Install audeep-edge as a systemd service: a venv with the light runtime (no TensorFlow), a model bundle, a
# device profile as /etc/audeep-edge/config.toml, and the audeep-edge.service unit, enabled and started.
# Made for Raspberry Pi OS Bookworm 64-bit (Python 3.11); see firmware_configs/README.md for every target.
# Safe to re-run: it upgrades the package, replaces the bundle only when --bundle is given, and keeps a
# config.toml you edited (the new profile goes to config.toml.new).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: sudo firmware_configs/install.sh [options]

  --profile NAME|FILE   rpi4, rpi5, rpi-coral-usb, coral-devboard, linux-x86_64, or a config file
                        (default: detected from the board)
  --bundle DIR          model bundle to install as /var/lib/audeep-edge/model.bundle, of the profile's
                        precision (default: keep the installed one, else the package's default model)
  --source SPEC         what pip installs: a source directory (default: this checkout), a wheel, or
                        audeep-edge from the package index (once it is published there)
  --python PATH         Python 3.11+ for the venv (default: python3)
  --broker URL          write this broker into the config (mqtt[s]://host[:port], or none)
  --user NAME           service user (default: audeep-edge)
  --prefix DIR          install below DIR (opt/, etc/, var/lib/ inside it) and touch nothing else:
                        no user, no systemctl (the unit is still written there unless --no-systemd)
  --system-site-packages  let the venv use the system's packages (e.g. Debian's python3-numpy)
  --offline             install nothing from the network: pip --no-deps --no-index --no-build-isolation;
                        the dependencies must already be importable in the venv
  --no-systemd          do not write, enable or start the systemd unit
  --with-edgetpu        add Coral's apt repository and install libedgetpu1-std (the Edge TPU runtime)
  --dry-run             print the commands instead of running them
  -h, --help            this help
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROFILES="rpi4 rpi5 rpi-coral-usb coral-devboard linux-x86_64"
PROFILE="" BUNDLE="" SOURCE="$(dirname "$HERE")" PYTHON="python3" BROKER="" SERVICE_USER="audeep-edge" PREFIX=""
SYSTEM_SITE=0 OFFLINE=0 SYSTEMD=1 EDGETPU=0 DRY_RUN=0

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 2; }
run() {  # run a command, or only show it with --dry-run
    if [ "$DRY_RUN" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --profile) need_value "$@"; PROFILE=$2; shift 2 ;;
        --bundle) need_value "$@"; BUNDLE=$2; shift 2 ;;
        --source) need_value "$@"; SOURCE=$2; shift 2 ;;
        --python) need_value "$@"; PYTHON=$2; shift 2 ;;
        --broker) need_value "$@"; BROKER=$2; shift 2 ;;
        --user) need_value "$@"; SERVICE_USER=$2; shift 2 ;;
        --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
        --system-site-packages) SYSTEM_SITE=1; shift ;;
        --offline) OFFLINE=1; shift ;;
        --no-systemd) SYSTEMD=0; shift ;;
        --with-edgetpu) EDGETPU=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

if [ -n "$PREFIX" ]; then
    mkdir -p "$PREFIX" || die "--prefix $PREFIX: cannot create it"
    PREFIX=$(cd "$PREFIX" && pwd)
fi
OPT=$PREFIX/opt/audeep-edge
VENV=$OPT/venv
ETC=$PREFIX/etc/audeep-edge
STATE=$PREFIX/var/lib/audeep-edge
UNIT_DIR=$PREFIX/etc/systemd/system
UNIT=audeep-edge.service

# -- what this machine is -------------------------------------------------------------------------------
detect_profile() {
    local model=""
    [ -r /proc/device-tree/model ] && model=$(tr -d '\0' </proc/device-tree/model)
    local coral_usb=0
    grep -qsxE '1a6e|18d1' /sys/bus/usb/devices/*/idVendor && \
        grep -qsxE '089a|9302' /sys/bus/usb/devices/*/idProduct && coral_usb=1
    case "$model" in
        *"Raspberry Pi 4"*|*"Raspberry Pi 5"*)
            if [ "$coral_usb" = 1 ]; then echo rpi-coral-usb
            elif [[ $model == *"Raspberry Pi 5"* ]]; then echo rpi5
            else echo rpi4; fi ;;
        *)
            if [ -e /dev/apex_0 ]; then echo coral-devboard
            elif [ "$(uname -m)" = x86_64 ]; then echo linux-x86_64
            else die "cannot tell which profile fits '${model:-$(uname -m)}': pass --profile ($PROFILES)"; fi ;;
    esac
}

[ -n "$PROFILE" ] || PROFILE=$(detect_profile)
if [ -f "$PROFILE" ]; then PROFILE_FILE=$PROFILE
elif [ -f "$HERE/$PROFILE.toml" ]; then PROFILE_FILE=$HERE/$PROFILE.toml
else die "--profile $PROFILE: no such file or profile ($PROFILES)"; fi
say "profile $PROFILE_FILE"

if [ -z "$PREFIX" ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "writes /opt, /etc and /var/lib: run it with sudo, or try it out with --prefix DIR"
fi
if [ -n "$BUNDLE" ]; then
    [ -f "$BUNDLE/bundle.json" ] || die "--bundle $BUNDLE: not a bundle directory (no bundle.json); make one with \`audeep-edge quantize\`"
    BUNDLE=$(cd "$BUNDLE" && pwd)
fi
case "$SOURCE" in
    */*|*.whl) [ -e "$SOURCE" ] || die "--source $SOURCE: no such file or directory"
               SOURCE=$(cd "$(dirname "$SOURCE")" && pwd)/$(basename "$SOURCE") ;;
esac
[ ! -d "$SOURCE" ] || [ -f "$SOURCE/pyproject.toml" ] \
    || die "--source $SOURCE: not a source tree (no pyproject.toml); pass --source WHEEL (or a checkout)"

# -- the Edge TPU runtime (only when asked) -------------------------------------------------------------
if [ "$EDGETPU" = 1 ]; then
    [ -z "$PREFIX" ] || [ "$DRY_RUN" = 1 ] || die "--with-edgetpu changes the system's apt sources: not with --prefix"
    say "adding Coral's apt repository and installing libedgetpu1-std"
    run install -d -m 0755 /etc/apt/keyrings
    run sh -c 'curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor --yes -o /etc/apt/keyrings/coral-edgetpu.gpg'
    run sh -c 'echo "deb [signed-by=/etc/apt/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" > /etc/apt/sources.list.d/coral-edgetpu.list'
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y libedgetpu1-std
    say "re-plug the Coral USB Accelerator so the new udev rule applies"
fi

# -- the venv and the package ---------------------------------------------------------------------------
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "--python $PYTHON: audeep-edge needs Python 3.11 or newer (Pi OS Bookworm has it as python3)"
"$PYTHON" -c 'import struct; raise SystemExit(struct.calcsize("P") != 8)' \
    || die "--python $PYTHON is 32-bit: ai-edge-litert needs a 64-bit OS (Raspberry Pi OS Bookworm 64-bit)"
# The profile's `precision` refuses a bundle of any other: check --bundle now, before anything is installed.
PRECISION=$(sed -n 's/^precision *= *"\([a-z0-9]*\)".*/\1/p' "$PROFILE_FILE" | head -n 1)
if [ -n "$BUNDLE" ] && [ -n "$PRECISION" ]; then
    bundle_precision=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["precision"])' \
        "$BUNDLE/bundle.json" 2>/dev/null) || die "--bundle $BUNDLE: bundle.json is unreadable or has no precision"
    [ "$bundle_precision" = "$PRECISION" ] || die "--bundle $BUNDLE is $bundle_precision but the profile has \
precision = \"$PRECISION\": quantize with --precision $PRECISION, or pass a --profile file with that precision"
fi
ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2' \
    || say "warning: PortAudio is missing, so --mic cannot capture: sudo apt install libportaudio2"

if [ -x "$VENV/bin/python" ]; then
    say "reusing the venv $VENV"
else
    "$PYTHON" -m venv --help >/dev/null 2>&1 || die "$PYTHON has no venv module: sudo apt install python3-venv"
    venv_args=()
    [ "$SYSTEM_SITE" = 1 ] && venv_args+=(--system-site-packages)
    run mkdir -p "$OPT"
    run "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
fi
# pip reinstalls a source directory every time (its version number stays between changes) and upgrades the
# dependencies only where they no longer satisfy it
pip_args=(--disable-pip-version-check --upgrade)
[ "$OFFLINE" = 1 ] && pip_args+=(--no-deps --no-index --no-build-isolation)
say "pip install $SOURCE"
run "$VENV/bin/python" -m pip install -q "${pip_args[@]}" "$SOURCE"
CLI=$VENV/bin/audeep-edge
if [ "$DRY_RUN" = 0 ]; then
    version=$("$CLI" --version) || die "the installed $CLI does not start (see above)"
    say "installed $version"
fi

# -- config, bundle, environment ------------------------------------------------------------------------
run install -d -m 0755 "$ETC"
run install -d -m 0750 "$STATE"
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
sed -e "s#/etc/audeep-edge#$ETC#g" -e "s#/var/lib/audeep-edge#$STATE#g" "$PROFILE_FILE" >"$rendered"
if [ -n "$BROKER" ]; then
    grep -q '^broker *=' "$rendered" || printf 'broker = ""\n' >>"$rendered"
    sed -i "s#^broker *=.*#broker = \"$BROKER\"#" "$rendered"
fi
if [ ! -e "$ETC/config.toml" ]; then
    run install -m 0640 "$rendered" "$ETC/config.toml"
    say "wrote $ETC/config.toml"
elif cmp -s "$rendered" "$ETC/config.toml"; then
    say "$ETC/config.toml is up to date"
else
    run install -m 0640 "$rendered" "$ETC/config.toml.new"
    say "kept your $ETC/config.toml; the profile as it would be now is $ETC/config.toml.new"
fi

if [ -n "$BUNDLE" ]; then
    run rm -rf "$STATE/model.bundle.new"
    run cp -r "$BUNDLE" "$STATE/model.bundle.new"
    run rm -rf "$STATE/model.bundle"
    run mv "$STATE/model.bundle.new" "$STATE/model.bundle"
    say "installed the bundle $BUNDLE as $STATE/model.bundle"
elif [ -d "$STATE/model.bundle" ]; then
    say "keeping the installed bundle $STATE/model.bundle"
elif [ "$DRY_RUN" = 1 ]; then
    printf '+ copy the package'"'"'s bundled model to %s\n' "$STATE/model.bundle"
else
    packaged=$("$VENV/bin/python" -c 'import sys; from audeep_edge.pipeline.assemble import find_bundle
print(find_bundle(None, sys.argv[1] or None).path)' "$PRECISION" 2>/dev/null) \
        || die "the package's default model is missing${PRECISION:+ or not $PRECISION}: pass --bundle DIR (made by \`audeep-edge quantize\`)"
    cp -r "$packaged" "$STATE/model.bundle"
    say "installed the bundled model $(basename "$packaged") as $STATE/model.bundle"
fi

if [ ! -e "$ETC/environment" ]; then
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ write %s\n' "$ETC/environment"
    else
        printf '%s\n' "# Secrets for $UNIT as KEY=value lines (mode 0640: root and the service only)." \
            "# AUDEEP_MQTT_PASSWORD=..." "# AUDEEP_DASHBOARD_TOKEN=..." >"$ETC/environment"
        chmod 0640 "$ETC/environment"
    fi
fi

[ "$DRY_RUN" = 1 ] || "$CLI" config check "$ETC/config.toml" \
    || die "$ETC/config.toml does not check out (above); fix it or re-run with other options"

# -- the service ----------------------------------------------------------------------------------------
if [ "$SYSTEMD" = 0 ]; then
    say "done (no systemd unit): $CLI listen --config $ETC/config.toml"
    exit 0
fi
groups=()
for group in audio plugdev; do getent group "$group" >/dev/null && groups+=("$group"); done
run install -d -m 0755 "$UNIT_DIR"
if [ "$DRY_RUN" = 1 ]; then
    printf '+ write %s\n' "$UNIT_DIR/$UNIT"
else
    sed -e "s#/opt/audeep-edge#$OPT#g" -e "s#/etc/audeep-edge#$ETC#g" -e "s#/var/lib/audeep-edge#$STATE#g" \
        -e "s#^User=.*#User=$SERVICE_USER#" -e "s#^Group=.*#Group=$SERVICE_USER#" \
        -e "s#^SupplementaryGroups=.*#SupplementaryGroups=${groups[*]}#" "$HERE/$UNIT" >"$UNIT_DIR/$UNIT"
fi
say "wrote $UNIT_DIR/$UNIT"
if [ -n "$PREFIX" ]; then
    say "done (--prefix: no user, no systemctl): $CLI listen --config $ETC/config.toml"
    exit 0
fi
# The user gets the groups too, so `sudo -u audeep-edge audeep-edge doctor` sees what the service sees.
group_list=$(IFS=,; echo "${groups[*]}")
if ! getent passwd "$SERVICE_USER" >/dev/null; then
    run useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin \
        ${group_list:+--groups "$group_list"} "$SERVICE_USER"
elif [ -n "$group_list" ]; then
    run usermod --append --groups "$group_list" "$SERVICE_USER"
fi
run chown -R "$SERVICE_USER:$SERVICE_USER" "$STATE"
run chown "root:$SERVICE_USER" "$ETC/config.toml" "$ETC/environment"
run systemctl daemon-reload
run systemctl enable "$UNIT"
run systemctl restart "$UNIT"
say "started: systemctl status audeep-edge; logs: journalctl -u audeep-edge -f"
say "check the device: sudo -u $SERVICE_USER $CLI doctor --config $ETC/config.toml"
