"""The config classes proper: TRL's configs plus ehr-r1's fields.

Kept apart from training.config because it imports TRL (the ``train`` extra) at import time;
the classes must live at module level so that checkpoints can pickle them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig, SFTConfig

from training.config import CaseFields, GrpoFields


@dataclass
class EhrSFTConfig(SFTConfig, CaseFields):
    """TRL's SFTConfig plus CaseFields; used by the dapt and sft stages."""

    # TRL defaults this deprecated alias to True, which warns on every construction; recipes use
    # activation_checkpointing (transformers >= 5) instead.
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Deprecated alias of activation_checkpointing."})


@dataclass
class EhrGRPOConfig(GRPOConfig, CaseFields, GrpoFields):
    """TRL's GRPOConfig plus CaseFields and GrpoFields."""

    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Deprecated alias of activation_checkpointing."})
