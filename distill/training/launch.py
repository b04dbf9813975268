"""Several GPUs: hand the resolved recipe to `accelerate launch`, one process per GPU.

One GPU trains in-process (`sft()` never comes here). Several GPUs on one node: `launch(cfg)` writes
the resolved SFT config to `output_dir/sft_config.json` and runs
`accelerate launch --config_file recipes/accelerate/<sharding>.yaml … -m distill.training.launch that.json`.
Several nodes: `sbatch recipes/slurm/sft.slurm RECIPE` runs `distill sft RECIPE` once per node; this
module adds the node's rank and the main node's address from the environment Slurm sets
(SLURM_NODEID / NODE_RANK, MASTER_ADDR, MASTER_PORT).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from distill.errors import ConfigError, StageError
from distill.resources import shipped_path
from distill.training.config import SFTConfig

log = logging.getLogger(__name__)

CONFIG_FILE = "sft_config.json"
_DEFAULT_CONFIGS = {
    "ddp": "ddp.yaml",
    "fsdp2": "fsdp2.yaml",
    "zero3": "zero3.yaml",
    "none": "single_gpu.yaml",
}


def accelerate_config_path(cfg: SFTConfig) -> Path:
    """The accelerate config of the recipe: its own, or recipes/accelerate/<sharding>.yaml."""
    hw = cfg.hardware
    if hw.accelerate_config is not None:
        path = hw.accelerate_config
    else:
        name = "zero3_offload.yaml" if hw.cpu_offload else _DEFAULT_CONFIGS[hw.sharding]
        path = Path("recipes/accelerate") / name  # a copy in ./recipes/accelerate wins over the shipped one
    path = shipped_path(path)
    if not path.exists():
        raise ConfigError(f"accelerate config {path} not found: set sft.hardware.accelerate_config")
    return path


def accelerate_command(cfg: SFTConfig, config_json: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """argv of `accelerate launch` for this node."""
    env = os.environ if env is None else env
    hw = cfg.hardware
    # `python -m accelerate.commands.launch` is `accelerate launch` without relying on the console script.
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(accelerate_config_path(cfg)),
        "--num_processes",
        str(hw.world_size),
        "--num_machines",
        str(hw.nodes),
        "--mixed_precision",
        "bf16" if cfg.bf16 else "no",
    ]
    if hw.nodes > 1:
        rank = env.get("SLURM_NODEID", env.get("NODE_RANK"))
        addr = env.get("MASTER_ADDR")
        if rank is None or not addr:
            raise ConfigError(
                f"{hw.nodes} nodes: run through `sbatch recipes/slurm/sft.slurm RECIPE` "
                "(or set NODE_RANK, MASTER_ADDR and MASTER_PORT on every node)"
            )
        cmd += [
            "--machine_rank",
            rank,
            "--main_process_ip",
            addr,
            "--main_process_port",
            env.get("MASTER_PORT", "29500"),
            "--rdzv_backend",
            "static",
        ]
    # Sequence parallelism (DeepSpeed Ulysses) reaches each rank through TrainingArguments'
    # `parallelism_config` (train.trainer_arguments), not as launch flags: accelerate's launcher accepts
    # `--use_parallelism_config` only with FSDP2 and refuses it with DeepSpeed.
    return [*cmd, "-m", "distill.training.launch", str(config_json)]


def launch(cfg: SFTConfig) -> list[str]:
    """Run the recipe under `accelerate launch` on this node and wait; returns the argv used."""
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    config_json = cfg.output_dir / CONFIG_FILE
    config_json.write_text(cfg.model_dump_json(indent=2), encoding="utf-8")
    cmd = accelerate_command(cfg, config_json)
    log.info("launching: %s", " ".join(cmd))
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        raise StageError(f"accelerate launch exited with {done.returncode}: see the log above")
    return cmd


def main(argv: list[str] | None = None) -> None:
    """Entry point of each launched rank: train the resolved config in-process."""
    from distill.training.train import TOKENIZED_DIR, sft

    # A launched rank is a process entry point, like the CLI: it sets up its own logging.
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m distill.training.launch OUTPUT_DIR/sft_config.json")
    cfg = SFTConfig.model_validate(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    tokenized = cfg.output_dir / TOKENIZED_DIR
    sft(cfg, tokenized=tokenized if tokenized.is_dir() else None, launcher=_never_relaunch)


def _never_relaunch(cfg: SFTConfig) -> list[str]:
    """A launched rank must train, never launch again (that would recurse without end)."""
    raise ConfigError(
        f"accelerate started this process without a distributed environment (no WORLD_SIZE) for "
        f"{cfg.hardware.world_size} GPUs: check {accelerate_config_path(cfg)} (distributed_type, num_processes)"
    )


if __name__ == "__main__":
    main()
