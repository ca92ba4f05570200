"""Exporters of a trained model: TorchScript, torch.export, ONNX (fp32/int8), TFLite (fp32/int8)."""
