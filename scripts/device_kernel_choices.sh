#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): the kernel choices the ops
# make (src/cuda/kernel_choice.h), forced one way and the other and timed in one run, fp16,
# trocr-base and trocr-small shapes. Records (with the forced choice in each) go to
# $OUT/choices.json. CHOICES (TROCR_KERNELS specs, space-separated), CHOICE_BATCHES and MODELS
# narrow it; ROUNDS (1) repeats the choices, alternating.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing
default_choices="encoder_attention=gemms,cross_attention=grouped encoder_attention=fused,cross_attention=grouped
  encoder_attention=gemms,cross_attention=chunked encoder_attention=fused,cross_attention=encoder_states portable"
for round in $(seq "${ROUNDS:-1}"); do
  for model in ${MODELS:-trocr-base trocr-small}; do
    for choice in ${CHOICES:-$default_choices}; do
      .device-bin/trocr bench -m $models/$model --name $model --dtype fp16 --batch ${CHOICE_BATCHES:-1,256} \
        --beams 1,4 --repeat 5 --warmup 2 --kernels "$choice" --profile \
        --commit "$commit" --json "$out/choice-$model-${choice//[,=]/-}-$round.json" 2>&1 | tee -a "$out/choices.log"
    done
  done
done
python3 bench/merge_records.py "$out" "choice-*.json" choices.json
