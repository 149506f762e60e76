"""hubpress: publish image-editing datasets and LoRA weights to the Hugging Face Hub with Prefect.

Importing hubpress first translates the qflux guide's HF_HUB_ENABLE_HF_TRANSFER=1 into its
modern equivalent, because huggingface_hub reads its switches once, when it is imported.
"""

from hubpress._env import apply_transfer_compat, limit_malloc_arenas

__version__ = "0.1.0"

apply_transfer_compat()
limit_malloc_arenas()
