"""LoRA fine-tuning toolkit: Unsloth + TRL wrapped in one short module per notebook step.

Steps: load -> lora -> data -> train -> export -> infer, then poker/ (data, arena) and analysis.
"""
__version__ = "0.1.0"
