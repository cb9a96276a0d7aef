"""Identity-preserving face super-resolution: data, generator, losses, pruning, training, evaluation."""
