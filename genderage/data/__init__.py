"""Preparing data: label sources → checked images → de-duplication → leakage-safe splits → an ImageFolder with a card."""

from .imagefolder import PrepareConfig, load_prepared, prepare_dataset

__all__ = ["PrepareConfig", "load_prepared", "prepare_dataset"]
