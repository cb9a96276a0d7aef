"""`faceedge eval stream`: the end-to-end benchmark of what the real pipeline publishes, on video with identity truth."""
