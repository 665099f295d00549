"""Optional text conditioning: a frozen transformers text encoder loaded from a local directory.

CLIP text models and T5 encoders are supported; their last hidden states feed the UNet's
cross-attention. Nothing is downloaded: the directory must hold the weights and the tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from wmcore.errors import UserInputError


class TextEncoder(nn.Module):
    """Tokenizer + frozen encoder; `forward(texts)` -> hidden states [B, S, D]."""

    def __init__(self, path: str | Path, max_length: int = 32):
        super().__init__()
        import transformers

        path = Path(path)
        if not (path / "config.json").is_file():
            raise UserInputError(
                f"{path}: no text encoder found (config.json missing); give a local directory "
                "with a CLIP text model or T5 encoder and its tokenizer (no downloads)"
            )
        cfg = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        if cfg.model_type in ("clip", "clip_text_model"):
            cls = transformers.CLIPTextModel
        elif cfg.model_type in ("t5", "mt5", "umt5"):
            cls = transformers.T5EncoderModel
        else:
            raise UserInputError(
                f"{path}: text encoder type {cfg.model_type!r} is not supported (use a CLIP text model or a T5 encoder)"
            )
        self.encoder = cls.from_pretrained(path, local_files_only=True).eval().requires_grad_(False)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.max_length = min(max_length, int(getattr(self.tokenizer, "model_max_length", max_length)))
        self.hidden_size = int(self.encoder.config.hidden_size)

    @torch.inference_mode()
    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.encoder.parameters()).device
        tok = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        out = self.encoder(input_ids=tok["input_ids"].to(device), attention_mask=tok["attention_mask"].to(device))
        return out.last_hidden_state.clone()

    def save(self, path: str | Path) -> None:
        self.encoder.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
