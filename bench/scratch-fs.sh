#!/usr/bin/env bash
# Makes a fresh file system for benchmark runs: an ext4 image without a
# journal on a loop device with direct I/O, mounted at MOUNT. Run it again
# before each comparison; it unmounts and replaces the image it made last
# time. See bench/README.md ("A scratch file system") for why.
#
#   sudo bench/scratch-fs.sh MOUNT [SIZE]       e.g. bench/scratch-fs.sh /mnt/bench 24G
#   BENCH_DIR=MOUNT/b bench/vdir.sh ...
#
# Environment:
#   SCRATCH_IMAGE   the image file (default /tmp/tandem-scratch.img); it is
#                   sparse, so SIZE is room, not disk used up front
set -euo pipefail

MOUNT="${1:?usage: bench/scratch-fs.sh MOUNT [SIZE]}"
SIZE="${2:-24G}"
IMAGE="${SCRATCH_IMAGE:-/tmp/tandem-scratch.img}"

fail() {
    echo "scratch-fs: $*" >&2
    exit 1
}

[[ "$(id -u)" == 0 ]] || fail "needs root (losetup, mkfs, mount)"
MOUNT="$(realpath -m "$MOUNT")"
[[ "$MOUNT" != / ]] || fail "refusing to mount over /"
case "$(realpath -m "$IMAGE")" in
    "$MOUNT"/*) fail "the image $IMAGE must not be inside $MOUNT" ;;
esac

# Unmount and detach what an earlier run left.
if mountpoint -q "$MOUNT"; then
    umount "$MOUNT" || fail "cannot unmount $MOUNT (a process still inside it?)"
fi
while read -r dev; do
    [[ -n "$dev" ]] && losetup -d "$dev"
done < <(losetup -j "$IMAGE" 2>/dev/null | cut -d: -f1)

rm -f "$IMAGE"
truncate -s "$SIZE" "$IMAGE"
# Direct I/O: the image's blocks are not cached a second time in the page
# cache of the file system holding it, so the runs see the memory a real
# disk would leave them.
DEV="$(losetup --direct-io=on -f --show "$IMAGE")"
# No journal, as on the machine's own disk; an inode per 4 KiB, as a card
# takes one block and the runs keep several copies; inode tables written
# now rather than in the background during the first runs.
mkfs.ext4 -q -F -O ^has_journal -i 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$DEV"
mkdir -p "$MOUNT"
mount "$DEV" "$MOUNT"
echo "scratch-fs: $MOUNT is a new ext4 file system (no journal) on $DEV, direct I/O, backed by $IMAGE"
