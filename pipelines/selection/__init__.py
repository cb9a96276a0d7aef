"""Recognition-aware face selection: a small CNN that predicts whether SFace will
identify a face correctly, trained on labels from SFace itself."""
