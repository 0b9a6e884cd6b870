"""Measuring a saved model on labelled photos from anywhere, through the app's own detect-and-crop path."""
