"""Upload a trained student to the Hugging Face Hub, with the dataset push's token rules.

The token comes from the recipe's `token_env` (default HF_TOKEN) or the library's stored login, and
is never printed, logged or written. Checkpoint folders stay local; the model, tokenizer, generation
config and sft_report.json go up in one commit.
"""

from __future__ import annotations

import os

from distill.errors import ConfigError, HubError
from distill.training.config import SFTConfig


def push_model(cfg: SFTConfig, *, endpoint: str | None = None, token: str | None = None) -> str:
    """Create cfg.hub_model_id if needed and upload output_dir; returns the repo URL."""
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = cfg.hub_model_id
    if not repo_id:
        raise ConfigError("sft.hub_model_id: required to push the student (ORG/NAME)")

    token = token or os.environ.get(cfg.token_env) or get_token()
    if not token:
        raise HubError(
            f"no Hugging Face token: set {cfg.token_env} or run `hf auth login` (a token with write access)"
        )
    if constants.is_offline_mode():
        raise HubError("HF_HUB_OFFLINE is set: unset it to push")
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    api = HfApi(endpoint=endpoint, token=token, library_name="distill")
    try:
        api.create_repo(repo_id, repo_type="model", private=cfg.hub_private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(cfg.output_dir),
            repo_type="model",
            ignore_patterns=["checkpoint-*", "checkpoint-*/**", "tokenized/**", "sft_config.json"],
            commit_message="distill sft: trained student",
        )
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", None)
        raise HubError(
            f"push of the model to {cfg.hub_model_id} failed (HTTP {status}): check the token's "
            f"write access to that namespace"
        ) from e
    except OSError as e:
        raise HubError(f"push of the model to {cfg.hub_model_id} failed: {type(e).__name__}") from e
    return f"{endpoint}/{cfg.hub_model_id}"
