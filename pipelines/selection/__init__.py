"""Recognition-aware face selection (seed 002): a small CNN that predicts whether SFace will
identify a face correctly, trained on labels from SFace itself."""
