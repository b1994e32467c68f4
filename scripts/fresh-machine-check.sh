#!/usr/bin/env bash
# Manual check (minutes, not CI): do the README's two commands work for a newcomer on bare Debian 12?
# Builds a bare bookworm root, clones this repository's committed HEAD into it (no ../shared beside it),
# runs scripts/setup.sh and scripts/test.sh there in a chroot with a clean environment, and summarizes.
#   sudo scripts/fresh-machine-check.sh [--keep] [WORKDIR]    # WORKDIR: $EMBER_FRESH_DIR or /tmp/ember-fresh
#   --keep  keep the root afterwards, and start from a kept one if present (default: a new bare root each run)
set -euo pipefail

keep=0 work=${EMBER_FRESH_DIR:-/tmp/ember-fresh}
for a in "$@"; do
    case $a in
        --keep) keep=1 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        -*) echo "unknown option: $a" >&2; exit 2 ;;
        *) work=$a ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root: mmdebstrap, mount and chroot need it" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work"; work=$(cd "$work" && pwd)
root=$work/root
phases=""
phase_done() { phases+=$(printf '  %-11s %4ds' "$1" $((SECONDS - t0)))$'\n'; t0=$SECONDS; }

# Always take the bind mounts down, even on failure or Ctrl-C; only then may the root be removed.
unmount_all() {
    local m
    for m in sys dev/shm dev/pts dev proc; do
        if mountpoint -q "$root/$m"; then umount "$root/$m" || umount -l "$root/$m"; fi
    done
}
cleanup() {
    unmount_all
    if [ "$keep" -eq 0 ] && [ -d "$root" ]; then rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT
unmount_all  # a run killed before its trap could run leaves its mounts behind

t0=$SECONDS
if ! command -v mmdebstrap >/dev/null; then
    # Another apt may be running: wait for its lock rather than fail.
    apt-get -o DPkg::Lock::Timeout=900 install -y -q mmdebstrap >"$work/mmdebstrap-install.log" 2>&1
fi

if [ "$keep" -eq 1 ] && [ -x "$root/usr/bin/apt-get" ]; then
    echo "reusing the kept root $root"
else
    rm -rf --one-file-system "$root"   # mmdebstrap wants an empty target; a half-built one is useless anyway
    echo "building a bare Debian 12 root in $root (log: $work/mmdebstrap.log)"
    mmdebstrap --variant=apt bookworm "$root" >"$work/mmdebstrap.log" 2>&1 \
        || { echo "mmdebstrap FAILED, see $work/mmdebstrap.log:"; tail -n 20 "$work/mmdebstrap.log"; exit 1; }
fi
phase_done mmdebstrap

# /dev/pts too: apt wants a pty for its log; /dev/shm as on any machine.
for m in proc dev dev/pts dev/shm sys; do mount --bind "/$m" "$root/$m"; done
cp -L --remove-destination /etc/resolv.conf "$root/etc/resolv.conf"
# pip trusts this machine's CA bundle (it may hold a proxy's CA); keep a copy outside /etc/ssl, which
# installing ca-certificates in the root regenerates. Leave out find-links: a newcomer has no local wheels.
cp -L "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/pip-ca.pem"
{ [ -f /etc/pip.conf ] && sed -E '/^\s*(cert|find-links)\s*=/d' /etc/pip.conf || echo "[global]"; } \
    | sed -E 's|^\[global\]\s*$|[global]\ncert = /etc/pip-ca.pem|' >"$root/etc/pip.conf"

# A newcomer gets a clone: the committed HEAD, not this working tree.
rm -rf "$root/root/ember"
git clone -q --no-hardlinks "$repo" "$root/root/ember"
commit=$(git -C "$root/root/ember" log -1 --format='%h %s')
[ -z "$(git -C "$repo" status --porcelain)" ] || echo "note: uncommitted changes in $repo are not part of this check"
echo "testing $commit"
phase_done clone

in_root() {
    env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM="${TERM:-dumb}" \
        PIP_CERT=/etc/pip-ca.pem chroot "$root" /bin/bash -c "cd /root/ember && $1"
}
echo "running scripts/setup.sh (log: $work/setup.log)"
setup_rc=0; in_root scripts/setup.sh >"$work/setup.log" 2>&1 || setup_rc=$?
phase_done setup.sh
echo "running scripts/test.sh (log: $work/test.log)"
test_rc=0; in_root scripts/test.sh >"$work/test.log" 2>&1 || test_rc=$?
phase_done test.sh

# Lines of ctest's closing lists ("The following tests ...:") look like "<tab> 12 - name (Skipped)".
ctest_list() {
    awk -v h="$1" 'index($0, h) { on = 1; next } on && /^[ \t]+[0-9]+ - / { sub(/^[ \t]+/, ""); print "    " $0; n++; next }
                   { on = 0 } END { if (!n) print "    (none)" }' "$work/test.log"
}
echo
echo "=== fresh-machine check: $commit"
echo "phases:"; printf '%s' "$phases"
if [ "$setup_rc" -eq 0 ]; then
    echo "setup.sh: ok; its last lines (the model's answer):"
    tail -n 12 "$work/setup.log" | sed 's/^/  | /'
else
    echo "setup.sh: FAILED (exit $setup_rc), see $work/setup.log; its last lines:"
    tail -n 25 "$work/setup.log" | sed 's/^/  | /'
fi
if grep -q 'tests passed' "$work/test.log"; then
    echo "test.sh: $([ "$test_rc" -eq 0 ] && echo ok || echo "FAILED (exit $test_rc)"), log $work/test.log"
    grep -E 'tests passed|Total Test time' "$work/test.log" | sed 's/^/  /'
    echo "skipped / not run:"; ctest_list 'The following tests did not run:'
    echo "failed:"; ctest_list 'The following tests FAILED:'
else
    echo "test.sh: FAILED (exit $test_rc) before ctest ran, see $work/test.log; its last lines:"
    tail -n 25 "$work/test.log" | sed 's/^/  | /'
fi
[ "$keep" -eq 1 ] && echo "root kept in $root (reused by the next --keep run)"
[ "$setup_rc" -eq 0 ] && [ "$test_rc" -eq 0 ]
