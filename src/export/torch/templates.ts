/** The generated launcher, Accelerate / DeepSpeed configs and the job README (docs/scale-out.md). */
import type { JobJson } from './export.js';

export function launchSh(job: JobJson): string {
  return `#!/usr/bin/env bash
# Launch the heed job "${job.name}" (heed ${job.heed_version}) with torchrun: PyTorch DDP over every process
# (NCCL on GPUs, gloo on CPU). Arguments go to torchrun; arguments after "--" go to train.py.
#
#   one node, all its GPUs:       bash launch.sh --nproc_per_node 8
#   CPU, two processes (gloo):    bash launch.sh --nproc_per_node 2
#   several nodes: the same line on every node (HOST = the first node's address):
#     bash launch.sh --nnodes 4 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 --rdzv_id heed-${job.name}
#   FSDP instead of DDP:          bash launch.sh --nproc_per_node 8 -- --fsdp
#   resume from the last checkpoint: bash launch.sh --nproc_per_node 8 -- --resume
#   another run folder:           bash launch.sh --nproc_per_node 8 -- --run-dir /scratch/run-1
#
# Without --nnodes / --rdzv_* the job runs on this node alone (on a free port of 127.0.0.1; MASTER_PORT=... sets it).
set -euo pipefail
here="$(cd "$(dirname "\${BASH_SOURCE[0]}")" && pwd)"
torchrun_args=()
train_args=()
after=0
for a in "$@"; do
  if [ "$after" = 0 ] && [ "$a" = "--" ]; then after=1; continue; fi
  if [ "$after" = 0 ]; then torchrun_args+=("$a"); else train_args+=("$a"); fi
done
multi=0
nproc_given=0
for a in \${torchrun_args[@]+"\${torchrun_args[@]}"}; do
  case "$a" in
    --nnodes*|--rdzv*|--master_addr*|--master-addr*|--node_rank*|--node-rank*) multi=1 ;;
    --nproc_per_node*|--nproc-per-node*) nproc_given=1 ;;
  esac
done
extra=()
if [ "$nproc_given" = 0 ]; then
  n=1
  if command -v nvidia-smi >/dev/null 2>&1; then n=$(nvidia-smi -L 2>/dev/null | grep -c GPU || true); [ "$n" -ge 1 ] || n=1; fi
  extra+=(--nproc_per_node "$n")
fi
# torchrun itself is run as "<python> _torchrun.py" (torch.distributed.run plus a fix for torch < 2.1 on
# Python >= 3.11), with the Python of the torchrun on PATH; PYTHON=... or TORCHRUN=... choose another.
if [ -n "\${TORCHRUN:-}" ]; then
  launcher=("$TORCHRUN")
else
  py=(\${PYTHON:-})
  if [ "\${#py[@]}" = 0 ]; then
    tr="$(command -v torchrun || true)"
    shebang=""
    if [ -n "$tr" ]; then read -r shebang < "$tr" || true; fi
    case "$shebang" in "#!"*python*) read -r -a py <<< "\${shebang:2}" ;; *) py=(python3) ;; esac
  fi
  launcher=("\${py[@]}" "$here/_torchrun.py")
fi
if [ "$multi" = 0 ]; then
  # one node: static rendezvous on a free local port (what --standalone does, without its c10d store, whose
  # shutdown fails now and then on a busy machine with torch 1.13: "failed to shutdown the rendezvous")
  port="\${MASTER_PORT:-$(\${PYTHON:-python3} -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 29500)}"
  extra=(--nnodes 1 --node_rank 0 --master_addr 127.0.0.1 --master_port "$port" \${extra[@]+"\${extra[@]}"})
fi
exec "\${launcher[@]}" \${extra[@]+"\${extra[@]}"} \${torchrun_args[@]+"\${torchrun_args[@]}"} "$here/train.py" --job "$here" \${train_args[@]+"\${train_args[@]}"}
`;
}

/** accelerate configs (accelerate launch as the launcher of train.py) and the DeepSpeed ZeRO-3 variant. */
export function acceleratePaper(job: JobJson): Record<string, string> {
  const t = job.train as { grad_clip: number; batch_size: number };
  return {
    'multi-gpu.yaml': `# accelerate launch --config_file accelerate/multi-gpu.yaml train.py --job . --model-impl hf
# One node, 8 GPUs, plain DDP (train.py initialises torch.distributed from the environment accelerate sets).
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
num_machines: 1
num_processes: 8
machine_rank: 0
gpu_ids: all
mixed_precision: 'no'
same_network: true
use_cpu: false
`,
    'multi-node.yaml': `# On every node: accelerate launch --config_file accelerate/multi-node.yaml --machine_rank R train.py --job . --model-impl hf
# 4 nodes x 8 GPUs; HOST is the first node (machine_rank 0).
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
num_machines: 4
num_processes: 32
machine_rank: 0
main_process_ip: HOST
main_process_port: 29500
rdzv_backend: static
same_network: true
gpu_ids: all
mixed_precision: 'no'
use_cpu: false
`,
    'deepspeed-zero3.yaml': `# accelerate launch --config_file accelerate/deepspeed-zero3.yaml train.py --job . --model-impl hf --deepspeed accelerate/ds_zero3.json
# DeepSpeed ZeRO-3 (parameters, gradients and optimizer state sharded) on one node of 8 GPUs.
compute_environment: LOCAL_MACHINE
distributed_type: DEEPSPEED
deepspeed_config:
  deepspeed_config_file: accelerate/ds_zero3.json
  zero3_init_flag: false
num_machines: 1
num_processes: 8
machine_rank: 0
same_network: true
use_cpu: false
`,
    'ds_zero3.json':
      JSON.stringify(
        {
          train_micro_batch_size_per_gpu: t.batch_size,
          gradient_accumulation_steps: 1,
          gradient_clipping: t.grad_clip,
          zero_optimization: { stage: 3, overlap_comm: true, contiguous_gradients: true, stage3_gather_16bit_weights_on_model_save: false },
          bf16: { enabled: false },
          fp16: { enabled: false },
          zero_allow_untested_optimizer: true,
        },
        null,
        2,
      ) + '\n',
  };
}

export function readmeMd(job: JobJson): string {
  const t = job.train as Record<string, unknown>;
  const stages = job.stages.map((s) => `| ${s.name} | ${s.steps} | ${s.rows} | ${s.tokens} | ${s.lr} ${s.schedule}, warmup ${s.warmup_steps} | \`${s.dir}/\`, \`${s.sft_jsonl}\` |`).join('\n');
  return `# heed job "${job.name}" for PyTorch

Written by \`heed export torch\` (heed ${job.heed_version}). The same run as \`heed train\` on its config
(model_type ${job.model_type}, mask \`${job.mask}\`, template \`${job.template}\`), for torchrun / Accelerate on
one or many GPUs. Needs Python 3 with torch and numpy; \`transformers\` is used when importable.

| stage | steps | rows | tokens | lr, schedule | data |
|---|---|---|---|---|---|
${stages}

Global batch: ${t.batch_size} sequences × ${t.grad_accum} accumulation = ${Number(t.batch_size) * Number(t.grad_accum)} sequences per optimizer
step, whatever the number of processes (they split each step's sequences). Loss normalisation \`${t.loss_norm}\`,
grad_clip ${t.grad_clip}, AdamW ${JSON.stringify(t.adamw)}, seed ${t.seed}, eval every ${t.eval_every} steps, checkpoints
every ${t.save_every} steps (and at every evaluation when IFS early stopping is on), keep ${t.keep_last}.

## Run it

\`\`\`sh
bash launch.sh --nproc_per_node 8                       # one node, 8 GPUs (DDP, NCCL)
bash launch.sh --nproc_per_node 2                       # a CPU test: two processes over gloo
bash launch.sh --nnodes 4 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 --rdzv_id heed-${job.name}
                                                        # on every node of 4
bash launch.sh --nproc_per_node 8 -- --fsdp             # FSDP (torch >= 2.0) instead of DDP
bash launch.sh --nproc_per_node 8 -- --resume           # continue from the last checkpoint in run/
\`\`\`

The same with torchrun itself: \`torchrun --standalone --nproc_per_node 8 train.py --job .\`; several nodes:
\`torchrun --nnodes 4 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 --rdzv_id heed-${job.name} train.py --job .\`.
Accelerate as the launcher: \`accelerate launch --config_file accelerate/multi-gpu.yaml train.py --job .\`
(\`multi-node.yaml\`: 4 nodes; \`deepspeed-zero3.yaml\` + \`--deepspeed accelerate/ds_zero3.json\`: ZeRO-3).
TRL: \`python trl_sft.py\` trains the pre-tokenized rows (\`data/sft-stage-*.jsonl\`: input_ids, labels with −100
where the loss weight is 0) with TRL's SFTTrainer — close to, not equal to, heed's run (TRL's own order and
normalisation; it refuses weighted masks, whose λ it cannot carry).

\`--model-impl hf\` uses transformers' AutoModelForCausalLM (a 4-D block-diagonal mask keeps packed rows apart);
\`--model-impl heed\` uses \`heed_model.py\`, heed's own PyTorch implementation (torch only); \`auto\` (default)
picks hf when transformers is importable.

## The run folder (\`run/\`, or \`--run-dir\`)

- \`metrics.jsonl\`: one line per step in heed's format (step, stage, epoch, lr, loss, grad_norm, tokens,
  tokens_per_s, eval_loss at evaluations); \`heed watch\` appends its IFS / ObjecQA lines.
- \`step-N/\`: a Hugging Face model folder (config.json, model.safetensors, tokenizer files) that heed and
  transformers load, plus optimizer.pt and trainer_state.json for \`--resume\`. Written to \`.tmp-step-N/\` and
  renamed: a killed job resumes from the last complete checkpoint.
- \`STOP\`: create it (\`heed watch\` does when IFS early stopping fires) and the job stops cleanly after the
  current step, saving a checkpoint. SIGINT / SIGTERM also save a checkpoint; \`-- --resume\` continues.
- \`summary.json\`: steps, tokens, time, final metrics, best checkpoint, why it stopped.

## Watch it with heed

\`\`\`sh
heed watch run/          # evaluates each new checkpoint (IFS, ObjecQA, held-out loss), writes STOP on an IFS plateau
heed report run/         # the HTML report, as for any heed run
\`\`\`

## The data (readable without heed)

\`data/stage-K/\`: \`rows-*.ids.npy\` (int32 token ids, rows end to end), \`rows-*.weights.npy\` (float32 loss
weight of each token *as a target*: 0 at a row's first token and wherever the mask puts no loss, 1 or λ
elsewhere), \`rows-*.offsets.npy\` (int64 row starts), \`index.json\`; \`epoch-E.order.npy\` (the rows in heed's
seeded order) and \`epoch-E.seq_offsets.npy\` (sequence boundaries in that order: a packed sequence is several
consecutive rows, positions restart at 0 at every row and rows never attend to each other); \`steps.npy\`
(per optimizer step: epoch, first and end sequence, micro-batch cursor after the step, micro-batches in the
epoch). \`data/eval/\`: the held-out rows, with the output mask.
`;
}
