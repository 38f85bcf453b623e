"""The GAN's players: the circuit, the quantum and classical generators, the critic, the GAN."""
