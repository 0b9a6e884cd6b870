r"""Training-loop throughput against the same model's raw step on pre-made tensors. Goal ratio ≥ 0.90.

The real loop is the Trainer with the dataset, on-the-fly decoding and augmentation; the raw loop is
forward + backward + optimizer step on random tensors of the same batch size and resolution, with the same
precision and memory format. Both warm up first (the first steps run several times slower).

Usage:
    GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
    python benchmarks/train_throughput.py --config configs/efficientnet_lite0.yaml --data_dir data/utkface
    [--warmup 30 --steps 200 and any train.py override]
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pop_int(argv: list[str], flag: str, default: int) -> int:
    if flag in argv:
        position = argv.index(flag)
        value = int(argv[position + 1])
        del argv[position : position + 2]
        return value
    return default


def raw_images_per_second(model, training_args, image_size: int, channels_last: bool, warmup: int, steps: int) -> float:
    import torch

    batch = training_args.per_device_train_batch_size
    pixels = torch.randn(batch, 3, image_size, image_size)
    if channels_last:
        pixels = pixels.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, model.config.num_labels, (batch,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=training_args.learning_rate, weight_decay=training_args.weight_decay)
    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=training_args.bf16):
            loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return steps * batch / (time.perf_counter() - started)


def main() -> int:
    argv = sys.argv[1:]
    wants_help = bool({"-h", "--help"} & set(argv))
    if not wants_help and ("--config" not in argv or "--data_dir" not in argv):
        print(__doc__, file=sys.stderr)
        print("error: --config and --data_dir are required", file=sys.stderr)
        return 2
    warmup, steps = pop_int(argv, "--warmup", 30), pop_int(argv, "--steps", 200)
    from transformers import TrainerCallback

    from genderage.training.config import parse_config
    from genderage.training.trainer import build_trainer
    from genderage.training.transforms import processor_settings

    with tempfile.TemporaryDirectory() as out:
        try:
            if wants_help:  # this script's usage, then every option train.py takes (exits 0)
                parse_config(["--help"], description=__doc__)
            model_args, data_args, training_args = parse_config(
                argv + ["--output_dir", out, "--max_steps", str(warmup + steps), "--eval_strategy", "no", "--save_strategy", "no",
                        "--load_best_model_at_end", "false", "--logging_strategy", "no"]
            )
            trainer, _, processor, _ = build_trainer(model_args, data_args, training_args)
        except (ValueError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        size = processor_settings(processor)["size"]

        class Clock(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == warmup:
                    self.started = time.perf_counter()

            def on_train_end(self, args, state, control, **kwargs):
                self.seconds = time.perf_counter() - self.started

        clock = Clock()
        trainer.add_callback(clock)
        trainer.train()
        real = steps * training_args.per_device_train_batch_size / clock.seconds

    model = trainer.model  # same architecture and weights layout
    raw = raw_images_per_second(model, training_args, size, model_args.channels_last, warmup, steps)
    print(f"batch {training_args.per_device_train_batch_size}, {size} px, bf16 {training_args.bf16}, "
          f"workers {training_args.dataloader_num_workers}, {steps} timed steps after {warmup} warm-up")
    print(f"real training loop: {real:.1f} images/s")
    print(f"raw step on tensors: {raw:.1f} images/s")
    print(f"ratio: {real / raw:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
