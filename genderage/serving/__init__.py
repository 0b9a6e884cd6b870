"""Using a model: classifier inference, face detection and cropping, per-photo analysis, bulk prediction, the app."""
