"""GAN-graded face image quality (CN112700408A): DCGAN-graded levels, 3-panel ResNet."""
