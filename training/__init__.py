"""Training: domain adaptation, reasoning SFT and GRPO on TRL (imports everything below it)."""
