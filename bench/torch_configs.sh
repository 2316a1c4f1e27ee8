#!/bin/sh
# bench/torch_configs.sh — finds PyTorch's fastest configuration of the mangagan step on this CPU:
# every combination of PyTorch version (Debian 12's python3-torch 1.13 at /usr/bin/python3, and,
# when TRIXIE names a debootstrapped Debian 13 root with python3-torch 2.6 and this tree
# bind-mounted at the same path, its 2.6), precision (fp32, bf16 autocast), ConvTranspose2d
# through oneDNN's convolution backward or not, channels-last or not; one run of each, for each
# recipe and thread count. Prints one line per run and, per recipe and thread count, the fastest
# fp32 and the fastest of any precision. bench/compare.sh then runs those against ours.
#   TRIXIE=/srv/trixie RECIPES="seed dcgan" THREADS="1 2" STEPS=3 WARMUP=1 CORETYPE=SkylakeX
#   AUTOCAST="none bf16" CONVT_ONEDNN="0 1" CHANNELS_LAST="0 1" (a subset of the combinations)
set -eu
cd "$(dirname "$0")/.."
RECIPES=${RECIPES:-seed dcgan}
THREADS=${THREADS:-1 2}
STEPS=${STEPS:-3}
WARMUP=${WARMUP:-1}
export OPENBLAS_CORETYPE=${CORETYPE:-SkylakeX}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
pys="torch1.13:/usr/bin/python3"
if [ -n "${TRIXIE:-}" ]; then pys="$pys torch2.6:chroot:$TRIXIE"; fi
for r in $RECIPES; do
  for t in $THREADS; do
    for py in $pys; do
      label=${py%%:*}; how=${py#*:}
      for ac in ${AUTOCAST:-none bf16}; do
        for ct in ${CONVT_ONEDNN:-0 1}; do
          for cl in ${CHANNELS_LAST:-0 1}; do
            args="bench/mangagan_torch.py --recipe $r --threads $t --steps $STEPS --warmup $WARMUP --autocast $ac --convt-onednn $ct --channels-last $cl"
            case $how in
              chroot:*) o=$(OMP_NUM_THREADS=$t chroot "${how#chroot:}" /usr/bin/python3 "$PWD/$(echo $args | cut -d' ' -f1)" ${args#* } 2>/dev/null || true) ;;
              *) o=$(OMP_NUM_THREADS=$t "$how" $args 2>/dev/null || true) ;;
            esac
            ms=$(echo "$o" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
            echo "$r $t $label autocast=$ac convt-onednn=$ct channels-last=$cl ${ms:-failed}" | tee -a "$OUT"
          done
        done
      done
    done
  done
done
echo
for r in $RECIPES; do
  for t in $THREADS; do
    echo "$r, $t thread(s): fastest fp32: $(grep "^$r $t .*autocast=none" "$OUT" | grep -v failed | sort -k7 -n | head -1 | cut -d' ' -f3-)"
    echo "$r, $t thread(s): fastest of any precision: $(grep "^$r $t " "$OUT" | grep -v failed | sort -k7 -n | head -1 | cut -d' ' -f3-)"
  done
done
