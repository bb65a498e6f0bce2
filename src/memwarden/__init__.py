"""memwarden: a self-hosted memory core for AI agents whose every change is audited."""

from memwarden.config import Settings
from memwarden.core.service import Memwarden

__all__ = ["Memwarden", "Settings"]
__version__ = "0.1.0"
