"""Face image quality model of seed 000 (CN112700408A): DCGAN-graded levels, 3-panel ResNet."""
