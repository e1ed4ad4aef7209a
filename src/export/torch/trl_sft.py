"""The heed job trained with TRL's SFTTrainer on the pre-tokenized rows (written by `heed export torch`).

    python trl_sft.py [--job .] [--output-dir run-trl]          (or: accelerate launch trl_sft.py ...)

Needs torch, transformers, datasets and trl. Reads data/sft-stage-K.jsonl (input_ids, attention_mask, labels
with -100 where heed's loss weight is 0) and trains the stages in order with the job's hyperparameters. This
is the TRL way of running the recipe, close to but not equal to train.py: TRL shuffles with its own sampler,
and its loss is normalised per its own rules (transformers >= 4.46: over the accumulated batch). Weighted masks
(weights other than 0/1) are refused: labels cannot carry lambda; use train.py.
"""

import argparse
import json
import os
import sys

HEED_VERSION = "__HEED_VERSION__"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--output-dir", default=None)
    args = ap.parse_args()
    with open(os.path.join(args.job, "job.json")) as f:
        job = json.load(f)
    if job.get("heed_version") != HEED_VERSION:
        sys.exit(f"error: {args.job}/job.json is from heed {job.get('heed_version')}, this script from heed {HEED_VERSION} (fix: re-export the job)")
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    t = job["train"]
    model_dir = job["model"] if os.path.isabs(job["model"]) else os.path.join(args.job, job["model"])
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    pad = job["pad_id"]

    def collate(rows):
        T = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), T), pad, dtype=torch.long)
        labels = torch.full((len(rows), T), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    out = args.output_dir or os.path.join(args.job, "run-trl")
    for k, st in enumerate(job["stages"]):
        ds = load_dataset("json", data_files=os.path.join(args.job, st["sft_jsonl"]), split="train")
        if "loss_weights" in ds.column_names:
            sys.exit(f"error: stage {st['name']} has loss weights other than 0/1 (mask {job['mask']}); TRL's labels cannot carry them (fix: use train.py)")
        cfg = SFTConfig(
            output_dir=os.path.join(out, st["name"]),
            per_device_train_batch_size=t["batch_size"],
            gradient_accumulation_steps=t["grad_accum"],
            learning_rate=st["lr"],
            lr_scheduler_type={"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[st["schedule"]],
            warmup_steps=st["warmup_steps"],
            max_steps=st["steps"],
            max_grad_norm=t["grad_clip"] if t["grad_clip"] > 0 else 1e9,
            weight_decay=t["adamw"]["weight_decay"],
            adam_beta1=t["adamw"]["beta1"],
            adam_beta2=t["adamw"]["beta2"],
            adam_epsilon=t["adamw"]["eps"],
            seed=t["seed"],
            logging_steps=1,
            save_steps=t["save_every"],
            remove_unused_columns=False,
            dataset_kwargs={"skip_prepare_dataset": True},
            report_to=[],
        )
        trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, data_collator=collate, processing_class=tok)
        trainer.train()
        model = trainer.model
    trainer.save_model(os.path.join(out, "final"))
    tok.save_pretrained(os.path.join(out, "final"))


if __name__ == "__main__":
    main()
