"""Erasure for privacy: every copy of the text, a truthful receipt, a background scrub."""

from memwarden.core.erasure.receipt import Erased, EraseReceipt
from memwarden.core.erasure.select import Criteria, Selection

__all__ = ["Criteria", "EraseReceipt", "Erased", "Selection"]
