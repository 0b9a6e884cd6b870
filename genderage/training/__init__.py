"""Training: YAML recipe → model → transforms → Trainer → evaluation, calibration → model card, Hub, ONNX."""
