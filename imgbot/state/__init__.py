"""The shared state of a bot's replicas, behind one seam (``StateStore``) chosen by STATE_URL."""

from __future__ import annotations

from imgbot.state.base import (
    MESSAGE_CLAIM_SECONDS,
    ImageEntry,
    Job,
    StateStore,
    StoreInUse,
    StoreNotReady,
    StoreReport,
    StoreUnavailable,
    Verdict,
)
from imgbot.state.open import key_prefix, open_store

__all__ = [
    "MESSAGE_CLAIM_SECONDS",
    "ImageEntry",
    "Job",
    "StateStore",
    "StoreInUse",
    "StoreNotReady",
    "StoreReport",
    "StoreUnavailable",
    "Verdict",
    "key_prefix",
    "open_store",
]
